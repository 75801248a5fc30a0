using System.Diagnostics;
using Remus.Sandbox.Platform;
using Remus.Sandbox.Platform.Kvm;

namespace Remus.Bench;

/// <summary>
/// `remus-bench vcpus [--runs N]`: what a vCPU costs on the KVM platform (one per guest thread, issue 8 item 2):
/// <list type="bullet">
/// <item>the first vCPU of a domain: /dev/kvm, the VM, its RAM slot, the 2 MiB platform area, the vCPU (made and
/// closed, one after the other);</item>
/// <item>a sibling: <see cref="IVcpu.PrepareSibling"/> on the parent's thread (registers and XSAVE area) plus
/// <see cref="IVcpuSeed.Attach"/> on the new thread, with a new KVM vCPU (fresh) and with one a closed sibling left
/// parked (reused); closing one;</item>
/// <item>syscall round trips with one vCPU alone and with two vCPUs at once on their own threads (aggregate rate:
/// how much real parallelism two host cores give).</item>
/// </list>
/// Each figure is the median of its samples; figures only.
/// </summary>
static class VcpuBench
{
    private const ulong Code = 0x400000;
    // 0: b8 f4 01 00 00 mov eax, 500 ; 5: 0f 05 syscall ; 7: eb f7 jmp 0
    private static readonly byte[] SyscallLoop = [0xb8, 0xf4, 0x01, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7];

    public static void Run(int runs)
    {
        if (!KvmPlatform.IsAvailable(out string reason))
        {
            Console.WriteLine($"vcpus: no KVM here ({reason})");
            return;
        }
        int samples = Math.Max(runs, 5) * 4;
        using var memory = new GuestMemory(64UL << 20);
        memory.Write(Code, SyscallLoop);

        var first = new List<double>();
        for (int i = 0; i < samples; i++)
        {
            long t = Stopwatch.GetTimestamp();
            new KvmPlatformVcpu(memory).Dispose();
            first.Add(Stopwatch.GetElapsedTime(t).TotalMicroseconds);
        }

        var prepare = new List<double>();
        var fresh = new List<double>();
        var reused = new List<double>();
        var close = new List<double>();
        using (var parent = new KvmPlatformVcpu(memory))
        {
            Enter(parent, 0);
            Rounds(parent, 0, 1);
            for (int round = 0; round < 2; round++)
            {
                // Round 0 makes new KVM vCPUs; round 1 runs on the ones round 0 closed (parked in the VM).
                var siblings = new List<Sibling>();
                for (int i = 1; i <= samples && i < parent.MaxVcpus; i++)
                {
                    long t = Stopwatch.GetTimestamp();
                    IVcpuSeed seed = parent.PrepareSibling();
                    prepare.Add(Stopwatch.GetElapsedTime(t).TotalMicroseconds);
                    var s = new Sibling(seed, i);
                    (round == 0 ? fresh : reused).Add(s.AttachMicroseconds);
                    siblings.Add(s);
                }
                foreach (var s in siblings) close.Add(s.Close());
            }
        }

        // Syscalls: one vCPU alone, then two at once.
        int n = 2000;
        double alone = Median(Enumerable.Range(0, runs).Select(_ => Concurrent(memory, 1, n)).ToList());
        double two = Median(Enumerable.Range(0, runs).Select(_ => Concurrent(memory, 2, n)).ToList());
        Console.WriteLine($"KVM vCPU costs (median of {samples}; {Environment.ProcessorCount} host CPUs):");
        Console.WriteLine($"  first vCPU of a domain (VM, RAM slot, platform area, vCPU; then closed): {Median(first):F0} us");
        Console.WriteLine($"  sibling: PrepareSibling {Median(prepare):F0} us + Attach {Median(fresh):F0} us with a new KVM vCPU, " +
                          $"{Median(reused):F0} us on a parked one; closing one {Median(close):F0} us");
        Console.WriteLine($"  syscall round trips: one vCPU alone {alone / 1000:F1} k/s; two vCPUs at once {two / 1000:F1} k/s together " +
                          $"(x{two / alone:F2}; median of {runs} runs of {n} each)");
    }

    private static void Enter(IVcpu vcpu, int i)
    {
        ref var r = ref vcpu.Regs;
        r.Rip = Code;
        r.Rsp = 0x600000 + (ulong)i * 0x1000;
        r.Eflags = 0x202;
    }

    private static void Rounds(IVcpu vcpu, int i, int n)
    {
        for (int k = 0; k < n; k++)
        {
            VcpuExit exit;
            do exit = vcpu.Run(); while (exit.Kind == VcpuExitKind.Kicked);
            if (exit != VcpuExit.SyscallExit) throw new InvalidOperationException($"vCPU {i}: {exit}");
            vcpu.Regs.Rax = 0;
        }
    }

    /// <summary>Syscalls per second of <paramref name="count"/> vCPUs each making <paramref name="n"/> at once.</summary>
    private static double Concurrent(GuestMemory memory, int count, int n)
    {
        var ready = new Barrier(count + 1);
        var go = new ManualResetEventSlim();
        var threads = new List<Thread>();
        IVcpuSeed? seed = null;
        Exception? failure = null;
        var attached = new ManualResetEventSlim();
        for (int i = 0; i < count; i++)
        {
            int index = i;
            var thread = new Thread(() =>
            {
                try
                {
                    IVcpu vcpu;
                    if (index == 0)
                    {
                        vcpu = new KvmPlatformVcpu(memory);
                        if (count > 1) seed = vcpu.PrepareSibling();
                        attached.Set();
                    }
                    else
                    {
                        attached.Wait();
                        vcpu = seed!.Attach();
                    }
                    using (vcpu)
                    {
                        Enter(vcpu, index);
                        Rounds(vcpu, index, 10); // warm
                        ready.SignalAndWait();
                        go.Wait();
                        Rounds(vcpu, index, n);
                        ready.SignalAndWait();
                    }
                }
                catch (Exception e)
                {
                    failure = e;
                    attached.Set();
                    ready.RemoveParticipant();
                }
            });
            thread.Start();
            threads.Add(thread);
        }
        ready.SignalAndWait();
        long t = Stopwatch.GetTimestamp();
        go.Set();
        ready.SignalAndWait();
        double seconds = Stopwatch.GetElapsedTime(t).TotalSeconds;
        foreach (var th in threads) th.Join();
        if (failure != null) throw failure;
        return count * n / seconds;
    }

    private static double Median(List<double> xs) => Bench.Median(xs);

    /// <summary>A sibling on its own thread: attached (timed), one syscall, then closed when asked (timed).</summary>
    private sealed class Sibling
    {
        private readonly Thread _thread;
        private readonly ManualResetEventSlim _attached = new(), _close = new();
        private double _closeMicroseconds;
        private Exception? _failure;

        public double AttachMicroseconds { get; private set; }

        public Sibling(IVcpuSeed seed, int index)
        {
            _thread = new Thread(() =>
            {
                try
                {
                    long t = Stopwatch.GetTimestamp();
                    IVcpu vcpu = seed.Attach();
                    AttachMicroseconds = Stopwatch.GetElapsedTime(t).TotalMicroseconds;
                    Enter(vcpu, index);
                    Rounds(vcpu, index, 1);
                    _attached.Set();
                    _close.Wait();
                    t = Stopwatch.GetTimestamp();
                    vcpu.Dispose();
                    _closeMicroseconds = Stopwatch.GetElapsedTime(t).TotalMicroseconds;
                }
                catch (Exception e)
                {
                    _failure = e;
                    _attached.Set();
                }
            });
            _thread.Start();
            _attached.Wait();
            if (_failure != null) throw _failure;
        }

        public double Close()
        {
            _close.Set();
            _thread.Join();
            if (_failure != null) throw _failure;
            return _closeMicroseconds;
        }
    }
}
