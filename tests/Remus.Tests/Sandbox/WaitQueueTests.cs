using Remus.Sandbox.Kernel.Files;
using Remus.Sandbox.Kernel.Readiness;
using Xunit;

namespace Remus.Tests.Sandbox;

/// <summary>
/// The readiness model is built for many waiters (threads come later): every waiter on a file's queue is woken by a
/// change it asked for, none by one it did not ask for, and an interrupt ends a wait. The bounds only catch a wait
/// that never ends.
/// </summary>
public sealed class WaitQueueTests
{
    private static readonly TimeSpan Never = TimeSpan.FromSeconds(30);

    [Fact]
    public void Every_waiter_on_a_pipe_is_woken_by_a_write()
    {
        var pipe = new Pipe();
        var reader = new PipeFile(pipe, writeEnd: false, 0);
        var writer = new PipeFile(pipe, writeEnd: true, 1);
        var woken = new CountdownEvent(3);
        var ready = new CountdownEvent(3);
        var threads = Enumerable.Range(0, 3).Select(_ => new Thread(() =>
        {
            using var w = new Waiter();
            w.Listen(pipe.Queue, PollEvents.Readable);
            w.Arm();
            ready.Signal();
            if (reader.Readiness() == PollEvents.None) w.Sleep(-1, CancellationToken.None);
            woken.Signal();
        }) { IsBackground = true }).ToList();
        threads.ForEach(t => t.Start());
        Assert.True(ready.Wait(Never));
        Assert.Equal(1, writer.Write("x"u8));
        Assert.True(woken.Wait(Never), $"{woken.CurrentCount} waiters still asleep");
        threads.ForEach(t => t.Join());
    }

    [Fact]
    public void A_waiter_is_not_woken_by_events_it_did_not_ask_for_and_gives_way_to_an_interrupt()
    {
        var queue = new WaitQueue();
        using var w = new Waiter();
        w.Listen(queue, PollEvents.Writable);
        w.Arm();
        queue.Notify(PollEvents.Readable);
        Assert.False(w.Woken);
        using var interrupt = new CancellationTokenSource();
        interrupt.Cancel();
        Assert.False(w.Sleep(-1, interrupt.Token)); // the interrupt ends the wait
        queue.Notify(PollEvents.Writable);
        Assert.True(w.Woken);
        Assert.True(w.Sleep(-1, CancellationToken.None));
        w.Arm();
        queue.Notify(PollEvents.None); // a close or re-arm wakes every waiter
        Assert.True(w.Woken);
    }

    [Fact]
    public void A_closed_waiter_leaves_the_queue()
    {
        var queue = new WaitQueue();
        var w = new Waiter();
        w.Listen(queue, PollEvents.Readable);
        Assert.False(queue.IsEmpty);
        w.Dispose();
        Assert.True(queue.IsEmpty);
    }
}
