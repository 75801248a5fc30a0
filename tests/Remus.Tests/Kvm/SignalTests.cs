using Remus.Kvm;
using Remus.Kvm.Native;
using Xunit;

namespace Remus.Tests.Kvm;

/// <summary>The signal half of <see cref="VcpuKicker"/>, which needs no KVM: a real-time signal left at SIG_DFL but
/// blocked in the target thread's mask stays pending (it neither kills the process nor runs anything) and is consumed
/// by sigtimedwait.</summary>
public sealed class SignalTests
{
    [Fact]
    public void Default_kick_signal_is_sigrtmin_plus_6()
    {
        Assert.Equal(40, VcpuKicker.DefaultSignal); // glibc: SIGRTMIN = 34
    }

    [Fact]
    public void Blocked_default_disposition_signal_stays_pending_and_is_drained()
    {
        int signal = VcpuKicker.DefaultSignal;
        nuint target = 0;
        int drained = -1;
        bool stillBlocked = false;
        Exception? failure = null;
        using var ready = new ManualResetEventSlim();
        using var sent = new ManualResetEventSlim();

        var thread = new Thread(() =>
        {
            try
            {
                SigSet old = SignalOps.BlockOnCurrentThread(signal);
                target = SignalOps.CurrentThread();
                ready.Set();
                sent.Wait();
                stillBlocked = SignalOps.CurrentMask().Contains(signal);
                drained = SignalOps.DrainPending(signal);
                SignalOps.SetCurrentMask(old);
            }
            catch (Exception e)
            {
                failure = e;
                ready.Set();
            }
        });
        thread.Start();
        Assert.True(ready.Wait(TimeSpan.FromSeconds(10)));
        Assert.Null(failure);

        // Two kicks: real-time signals queue, so both must be consumed.
        SignalOps.Send(target, signal);
        SignalOps.Send(target, signal);
        sent.Set();
        Assert.True(thread.Join(TimeSpan.FromSeconds(10)));
        Assert.Null(failure);
        Assert.True(stillBlocked);
        Assert.Equal(2, drained);
    }

    [Fact]
    public void Kernel_sigset_is_the_first_64_signals()
    {
        var s = SigSet.Of(40);
        s.Add(1);
        Assert.Equal((1UL << 39) | 1UL, s.KernelMask);
        s.Remove(40);
        Assert.Equal(1UL, s.KernelMask);
    }
}
