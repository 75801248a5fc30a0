using System.Collections.Concurrent;

namespace Remus.Tests.Kvm;

/// <summary>A dedicated thread that runs the work given to it in order: a vCPU is bound to the thread that made it,
/// so a test drives each vCPU through its own <see cref="VcpuThread"/>, one call at a time or several at once.</summary>
internal sealed class VcpuThread : IDisposable
{
    private readonly BlockingCollection<(Action Work, TaskCompletionSource Done)> _queue = new();
    private readonly Thread _thread;

    public VcpuThread(string name)
    {
        _thread = new Thread(Loop) { Name = name, IsBackground = true };
        _thread.Start();
    }

    private void Loop()
    {
        foreach (var (work, done) in _queue.GetConsumingEnumerable())
        {
            try
            {
                work();
                done.SetResult();
            }
            catch (Exception e)
            {
                done.SetException(e);
            }
        }
    }

    /// <summary>Starts <paramref name="work"/> on the thread; the task completes (or faults) with it.</summary>
    public Task Post(Action work)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _queue.Add((work, done));
        return done.Task;
    }

    /// <summary>Runs <paramref name="work"/> on the thread and waits for it; its exception is rethrown here.</summary>
    public void Call(Action work) => Post(work).GetAwaiter().GetResult();

    public T Call<T>(Func<T> work)
    {
        T result = default!;
        Call(() => { result = work(); });
        return result;
    }

    public void Dispose()
    {
        _queue.CompleteAdding();
        _thread.Join();
        _queue.Dispose();
    }
}
