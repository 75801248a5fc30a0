using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Sandbox.Platform.Kvm;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Kvm;

/// <summary>
/// Several vCPUs in one KVM VM, one per host thread (issue 8 item 2), as guest threads will run: each runs the same
/// ring-3 code below with its own registers, stack and FS base, concurrently with the others, and each syscall and fault
/// must come back with exactly its own state. Skipped, with the reason, where /dev/kvm is missing; kvm-lab runs them on
/// stock KVM (<see cref="KvmLabTests"/>).
/// </summary>
public sealed class KvmSiblingTests
{
    private const ulong Code = 0x400000;
    private const int SysLoop = 500, SysReportXmm = 501, SysTouched = 502;

    // Assembled with GNU as (intel syntax); the entry points are Code + the offset.
    // Entry 0x00, the syscall loop: r12 = this vCPU's value, rbx = its counter, FS base = its tag block.
    //  0: 66 49 0f 6e c4             movq xmm0, r12
    //  5: 48 ff c3                   inc  rbx                      <- loop
    //  8: 48 89 5c 24 f8             mov  [rsp-8], rbx             a value in the red zone
    //  d: 64 48 8b 3c 25 00 00 00 00 mov  rdi, fs:[0]              this vCPU's tag, through its FS base
    // 16: 4c 89 e6                   mov  rsi, r12
    // 19: 48 89 da                   mov  rdx, rbx
    // 1c: b8 f4 01 00 00             mov  eax, 500
    // 21: 0f 05                      syscall
    // 23: 48 39 5c 24 f8             cmp  [rsp-8], rbx             the red zone survived
    // 28: 75 0c                      jne  bad
    // 2a: 66 48 0f 7e c0             movq rax, xmm0                and so did xmm0 (this vCPU's extended state)
    // 2f: 4c 39 e0                   cmp  rax, r12
    // 32: 75 02                      jne  bad
    // 34: eb cf                      jmp  loop
    // 36: 0f 0b                      ud2                           <- bad
    private static readonly byte[] Loop =
    [
        0x66, 0x49, 0x0f, 0x6e, 0xc4, 0x48, 0xff, 0xc3, 0x48, 0x89, 0x5c, 0x24, 0xf8, 0x64, 0x48, 0x8b, 0x3c, 0x25,
        0x00, 0x00, 0x00, 0x00, 0x4c, 0x89, 0xe6, 0x48, 0x89, 0xda, 0xb8, 0xf4, 0x01, 0x00, 0x00, 0x0f, 0x05, 0x48,
        0x39, 0x5c, 0x24, 0xf8, 0x75, 0x0c, 0x66, 0x48, 0x0f, 0x7e, 0xc0, 0x4c, 0x39, 0xe0, 0x75, 0x02, 0xeb, 0xcf,
        0x0f, 0x0b,
    ];
    private const ulong LoopReturn = Code + 0x23;

    // Entry 0x40, a fault: 4c 89 e7 mov rdi, r12 ; 0f 0b ud2 (the test sets rip back to 0x40 each time).
    private const ulong FaultEntry = Code + 0x40, FaultRip = Code + 0x43;
    private static readonly byte[] Fault = [0x4c, 0x89, 0xe7, 0x0f, 0x0b];

    // Entry 0x50: eb fe jmp $.
    private const ulong SpinEntry = Code + 0x50;

    // Entry 0x60: 66 48 0f 7e c7 movq rdi, xmm0 ; b8 f5 01 00 00 mov eax, 501 ; 0f 05 syscall ; eb fe jmp $.
    private const ulong ReportXmmEntry = Code + 0x60;
    private static readonly byte[] ReportXmm = [0x66, 0x48, 0x0f, 0x7e, 0xc7, 0xb8, 0xf5, 0x01, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xfe];

    // Entry 0x70: 41 c6 45 00 01 mov byte [r13], 1 ; b8 f6 01 00 00 mov eax, 502 ; 0f 05 syscall ; eb fe jmp $.
    private const ulong TouchEntry = Code + 0x70;
    private static readonly byte[] Touch = [0x41, 0xc6, 0x45, 0x00, 0x01, 0xb8, 0xf6, 0x01, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xfe];

    // Entry 0x80: 49 8b 45 00 mov rax, [r13] ; eb fa jmp 0x80 (reads a page until it faults).
    private const ulong ReadLoopEntry = Code + 0x80;
    private static readonly byte[] ReadLoop = [0x49, 0x8b, 0x45, 0x00, 0xeb, 0xfa];

    private static ulong StackTop(int vcpu) => 0x600000 + (ulong)vcpu * 0x1000 + 0x800;
    private static ulong TagBlock(int vcpu) => 0x700000 + (ulong)vcpu * 0x1000;
    private static ulong Tag(int vcpu) => 0x7a90_0000_0000UL + (ulong)vcpu;
    private static ulong Value(int vcpu) => 0x1111_1111_0000_0000UL * (ulong)(vcpu + 1) + 0x5a;

    private static GuestMemory NewMemory()
    {
        var memory = new GuestMemory(16UL << 20);
        memory.Write(Code, Loop);
        memory.Write(FaultEntry, Fault);
        memory.Write(SpinEntry, [0xeb, 0xfe]);
        memory.Write(ReportXmmEntry, ReportXmm);
        memory.Write(TouchEntry, Touch);
        memory.Write(ReadLoopEntry, ReadLoop);
        for (int i = 0; i < GuestLayout.MaxVcpus; i++) memory.WriteU64(TagBlock(i), Tag(i));
        return memory;
    }

    /// <summary>Sets vCPU <paramref name="i"/>'s registers to enter <paramref name="entry"/> with its own values.</summary>
    private static void Enter(IVcpu vcpu, int i, ulong entry)
    {
        ref var r = ref vcpu.Regs;
        r.Rip = entry;
        r.Rsp = StackTop(i);
        r.R12 = Value(i);
        r.Rbx = 0;
        r.Rax = 0;
        r.Eflags = 0x202;
        r.FsBase = TagBlock(i);
        r.GsBase = 0;
    }

    private static VcpuExit RunPastKicks(IVcpu vcpu)
    {
        VcpuExit exit;
        do exit = vcpu.Run(); while (exit.Kind == VcpuExitKind.Kicked);
        return exit;
    }

    /// <summary>Runs the syscall loop <paramref name="rounds"/> times on vCPU <paramref name="i"/> (entered at the
    /// loop's start), checking every exit against that vCPU's own values; <paramref name="progress"/> counts them.</summary>
    private static void SyscallLoop(IVcpu vcpu, int i, int rounds, Func<bool>? stop = null, Action? progress = null, bool kicksAllowed = false)
    {
        for (ulong k = 1; k <= (ulong)rounds || stop != null; k++)
        {
            if (stop != null && stop()) return;
            var exit = kicksAllowed ? RunPastKicks(vcpu) : vcpu.Run();
            ref var r = ref vcpu.Regs;
            Assert.True(exit == VcpuExit.SyscallExit, $"vCPU {i}, round {k}: {exit} at rip 0x{r.Rip:x} (0x{Code + 0x36:x}: its red zone or xmm0 changed)");
            Assert.Equal((ulong)SysLoop, r.OrigRax);
            Assert.True(r.Rdi == Tag(i), $"vCPU {i}, round {k}: read tag 0x{r.Rdi:x} through FS base 0x{r.FsBase:x}");
            Assert.True(r.Rsi == Value(i) && r.R12 == Value(i), $"vCPU {i}, round {k}: r12 0x{r.R12:x}, rsi 0x{r.Rsi:x}");
            Assert.True(r.Rdx == k && r.Rbx == k, $"vCPU {i}, round {k}: counter rbx {r.Rbx}, rdx {r.Rdx}");
            Assert.True(r.Rsp == StackTop(i), $"vCPU {i}, round {k}: rsp 0x{r.Rsp:x}, not its own 0x{StackTop(i):x}");
            Assert.True(r.Rip == LoopReturn, $"vCPU {i}, round {k}: rip 0x{r.Rip:x}");
            Assert.True(r.FsBase == TagBlock(i), $"vCPU {i}, round {k}: FS base 0x{r.FsBase:x}");
            r.Rax = k; // the "result"; the loop ignores it
            progress?.Invoke();
        }
    }

    /// <summary>Faults <paramref name="rounds"/> times on vCPU <paramref name="i"/>: each ud2 must come back as its own
    /// SIGILL with its own registers (the exception frame is on its own IST stack).</summary>
    private static void FaultLoop(IVcpu vcpu, int i, int rounds)
    {
        for (int k = 1; k <= rounds; k++)
        {
            Enter(vcpu, i, FaultEntry);
            var exit = RunPastKicks(vcpu);
            ref var r = ref vcpu.Regs;
            Assert.True(exit == new VcpuExit(VcpuExitKind.Fault, 4, FaultRip, 2, 6), $"vCPU {i}, fault {k}: {exit}");
            Assert.True(r.Rip == FaultRip, $"vCPU {i}, fault {k}: rip 0x{r.Rip:x}");
            Assert.True(r.Rsp == StackTop(i), $"vCPU {i}, fault {k}: rsp 0x{r.Rsp:x}, not its own 0x{StackTop(i):x}");
            Assert.True(r.Rdi == Value(i), $"vCPU {i}, fault {k}: rdi 0x{r.Rdi:x}");
            Assert.True(r.FsBase == TagBlock(i), $"vCPU {i}, fault {k}: FS base 0x{r.FsBase:x}");
        }
    }

    /// <summary>A VM with <paramref name="count"/> vCPUs, each made on (and owned by) its own <see cref="VcpuThread"/>:
    /// vCPU 0 directly, the others from seeds vCPU 0 prepared.</summary>
    private sealed class Machine : IDisposable
    {
        public GuestMemory Memory { get; } = NewMemory();
        public List<VcpuThread> Threads { get; } = [];
        public List<IVcpu?> Vcpus { get; } = [];

        public Machine(int count)
        {
            try
            {
                Add();
                Threads[0].Call(() => { Vcpus[0] = new KvmPlatformVcpu(Memory); });
                for (int i = 1; i < count; i++) AddSibling();
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        private int Add()
        {
            Threads.Add(new VcpuThread($"vcpu{Threads.Count}"));
            Vcpus.Add(null);
            return Threads.Count - 1;
        }

        /// <summary>A new vCPU prepared by vCPU <paramref name="parent"/> and attached on a new thread; its index here.</summary>
        public int AddSibling(int parent = 0)
        {
            IVcpuSeed seed = Threads[parent].Call(() => Vcpus[parent]!.PrepareSibling());
            int i = Add();
            try
            {
                Threads[i].Call(() => { Vcpus[i] = seed.Attach(); });
            }
            catch
            {
                seed.Dispose();
                throw;
            }
            return i;
        }

        public void Close(int i)
        {
            Threads[i].Call(() => Vcpus[i]?.Dispose());
            Vcpus[i] = null;
        }

        /// <summary>Runs <paramref name="work"/>(i, vCPU i) on every vCPU's thread at once and waits for all.</summary>
        public void Concurrently(Action<int, IVcpu> work)
        {
            using var start = new Barrier(Vcpus.Count(v => v != null));
            var tasks = new List<Task>();
            for (int i = 0; i < Vcpus.Count; i++)
            {
                if (Vcpus[i] is not { } vcpu) continue;
                int index = i;
                tasks.Add(Threads[i].Post(() =>
                {
                    if (!start.SignalAndWait(TimeSpan.FromMinutes(2))) throw new TimeoutException("the other vCPU threads never started");
                    work(index, vcpu);
                }));
            }
            Task.WaitAll(tasks);
        }

        public void Dispose()
        {
            for (int i = 0; i < Threads.Count; i++) Close(i);
            foreach (var t in Threads) t.Dispose();
            Memory.Dispose();
        }
    }

    [KvmFact]
    public void Two_vCPUs_make_syscalls_concurrently_each_with_its_own_registers_stack_and_FS_base()
    {
        using var m = new Machine(2);
        m.Concurrently((i, vcpu) =>
        {
            Enter(vcpu, i, Code);
            SyscallLoop(vcpu, i, 400);
        });
    }

    [KvmFact]
    public void Four_vCPUs_make_syscalls_and_take_faults_concurrently_without_crosstalk()
    {
        using var m = new Machine(4);
        Assert.Equal([0, 1, 2, 3], m.Vcpus.Select(v => ((KvmPlatformVcpu)v!).CpuIndex));
        m.Concurrently((i, vcpu) =>
        {
            if (i % 2 == 0)
            {
                Enter(vcpu, i, Code);
                SyscallLoop(vcpu, i, 300);
            }
            else
            {
                FaultLoop(vcpu, i, 300);
            }
        });
        // Then the other way round: each vCPU does what its neighbour did.
        m.Concurrently((i, vcpu) =>
        {
            if (i % 2 == 1)
            {
                Enter(vcpu, i, Code);
                SyscallLoop(vcpu, i, 200);
            }
            else
            {
                FaultLoop(vcpu, i, 200);
            }
        });
        // And all of them faulting at once: each frame is on its own vCPU's exception stack.
        m.Concurrently((i, vcpu) => FaultLoop(vcpu, i, 300));
    }

    [KvmFact]
    public void A_kick_stops_only_its_vCPU_and_closing_one_vCPU_leaves_the_other_running()
    {
        using var m = new Machine(2);
        long made = 0;
        bool kickedOne = false, closedOne = false, stop = false;
        Task loop = m.Threads[0].Post(() =>
        {
            var vcpu = m.Vcpus[0]!;
            Enter(vcpu, 0, Code);
            // Never Kicked: the kick below is vCPU 1's.
            SyscallLoop(vcpu, 0, 0, stop: () => Volatile.Read(ref stop), progress: () => Interlocked.Increment(ref made));
        });
        Task spin = m.Threads[1].Post(() =>
        {
            var vcpu = m.Vcpus[1]!;
            Enter(vcpu, 1, SpinEntry);
            var exit = vcpu.Run();
            Assert.True(Volatile.Read(ref kickedOne), $"vCPU 1 left the guest before it was kicked: {exit}");
            Assert.Equal(VcpuExit.KickedExit, exit);
            Assert.Equal(SpinEntry, vcpu.Regs.Rip);
            Assert.Equal(StackTop(1), vcpu.Regs.Rsp);
        });

        void AwaitProgress(long beyond)
        {
            while (Interlocked.Read(ref made) < beyond)
            {
                if (loop.IsCompleted) loop.GetAwaiter().GetResult(); // its failure
                Thread.Sleep(1);
            }
        }

        AwaitProgress(20);
        Volatile.Write(ref kickedOne, true);
        m.Vcpus[1]!.Kick();
        spin.GetAwaiter().GetResult();
        AwaitProgress(Interlocked.Read(ref made) + 20); // vCPU 0 went on

        m.Close(1);
        Volatile.Write(ref closedOne, true);
        AwaitProgress(Interlocked.Read(ref made) + 20); // and goes on without its sibling
        Volatile.Write(ref stop, true);
        loop.GetAwaiter().GetResult();
        Assert.True(closedOne);
    }

    [KvmFact]
    public void A_sibling_starts_with_its_parents_extended_state_and_each_vCPUs_state_saves_and_restores()
    {
        using var m = new Machine(1);
        var first = m.Vcpus[0]!;
        m.Threads[0].Call(() =>
        {
            Enter(first, 0, Code);
            SyscallLoop(first, 0, 1); // xmm0 = Value(0)
        });
        int sibling = m.AddSibling();
        var second = m.Vcpus[sibling]!;
        m.Threads[sibling].Call(() =>
        {
            Assert.Equal(LoopReturn, second.Regs.Rip);           // a copy of the parent's registers
            Assert.Equal(Value(0), second.Regs.R12);
            Assert.Equal(TagBlock(0), second.Regs.FsBase);
            second.Regs.Rip = ReportXmmEntry;
            Assert.Equal(VcpuExit.SyscallExit, RunPastKicks(second));
            Assert.Equal((ulong)SysReportXmm, second.Regs.OrigRax);
            Assert.Equal(Value(0), second.Regs.Rdi);              // and of its extended state
            Enter(second, 1, Code);
            SyscallLoop(second, 1, 1);                           // now xmm0 = Value(1)
        });

        byte[] state0 = m.Threads[0].Call(first.SaveExtendedState);
        byte[] state1 = m.Threads[sibling].Call(second.SaveExtendedState);
        // Swapped: each vCPU's saved state restores into the other, and a third vCPU takes vCPU 1's.
        int third = m.AddSibling();
        var vcpus = new[] { (0, state1, Value(1)), (sibling, state0, Value(0)), (third, state1, Value(1)) };
        foreach (var (i, state, expected) in vcpus)
        {
            var vcpu = m.Vcpus[i]!;
            m.Threads[i].Call(() =>
            {
                vcpu.RestoreExtendedState(state);
                Enter(vcpu, i, ReportXmmEntry);
                Assert.Equal(VcpuExit.SyscallExit, RunPastKicks(vcpu));
                Assert.True(vcpu.Regs.Rdi == expected, $"vCPU {i}: xmm0 0x{vcpu.Regs.Rdi:x} after the restore, expected 0x{expected:x}");
            });
        }
    }

    [KvmFact]
    public void The_dirty_log_is_the_VMs_a_harvest_on_one_vCPU_covers_the_writes_of_all()
    {
        using var m = new Machine(2);
        var first = m.Vcpus[0]!;
        m.Threads[0].Call(first.StartDirtyLog);
        m.Threads[1].Call(() =>
        {
            var vcpu = m.Vcpus[1]!;
            Enter(vcpu, 1, TouchEntry);
            vcpu.Regs.R13 = 0x900000;
            Assert.Equal(VcpuExit.SyscallExit, RunPastKicks(vcpu));
            Assert.Equal((ulong)SysTouched, vcpu.Regs.OrigRax);
        });
        var bitmap = new ulong[m.Memory.BitmapWords];
        first.HarvestDirty(bitmap); // any thread
        Assert.True((bitmap[0x900 / 64] & (1UL << (0x900 % 64))) != 0, "vCPU 1's write is missing from the harvest on vCPU 0");
    }

    [KvmFact]
    public void Areas_run_out_at_MaxVcpus_come_back_when_closed_and_the_VM_lives_until_its_last_vCPU()
    {
        using var m = new Machine(1);
        var first = (KvmPlatformVcpu)m.Vcpus[0]!;
        Assert.Equal(GuestLayout.MaxVcpus, first.MaxVcpus);
        var seeds = new List<IVcpuSeed>();
        m.Threads[0].Call(() =>
        {
            for (int i = 1; i < first.MaxVcpus; i++) seeds.Add(first.PrepareSibling());
            Assert.Throws<SandboxException>(() => first.PrepareSibling());
            seeds[^1].Dispose();
            seeds.RemoveAt(seeds.Count - 1);
            seeds.Add(first.PrepareSibling()); // the area came back
        });
        foreach (var s in seeds.Skip(2)) s.Dispose();

        // vCPU 0 goes first; the VM stays for the seeds, which attach and run after it.
        m.Close(0);
        for (int k = 0; k < 2; k++)
        {
            int i = m.Threads.Count;
            m.Threads.Add(new VcpuThread($"vcpu{i}"));
            m.Vcpus.Add(null);
            var seed = seeds[k];
            m.Threads[i].Call(() =>
            {
                var vcpu = seed.Attach();
                m.Vcpus[i] = vcpu;
                Assert.Throws<InvalidOperationException>(() => seed.Attach());
                Enter(vcpu, i, Code);
                SyscallLoop(vcpu, i, 20);
            });
            if (k == 0) m.Close(i); // its KVM vCPU is parked and the next sibling takes it up
        }
    }

    [KvmFact]
    public void A_closed_siblings_vCPU_serves_the_next_one_with_that_ones_own_area()
    {
        using var m = new Machine(2);
        for (int round = 0; round < 3; round++)
        {
            m.Close(1);
            int i = m.AddSibling();
            // The new sibling runs on the parked KVM vCPU, now at area 1 again; it uses its own thread's index for values.
            m.Concurrently((j, vcpu) =>
            {
                Enter(vcpu, j, Code);
                SyscallLoop(vcpu, j, 50);
            });
            m.Threads[i].Call(() => Assert.Equal(1, ((KvmPlatformVcpu)m.Vcpus[i]!).CpuIndex));
            (m.Vcpus[1], m.Vcpus[i]) = (m.Vcpus[i], null);
            (m.Threads[1], m.Threads[i]) = (m.Threads[i], m.Threads[1]);
        }
    }

    [SkippableFact]
    public void A_permission_taken_away_on_one_vCPU_reaches_a_sibling_running_in_the_guest()
    {
        Skip.IfNot(Platforms.KvmDeviceUsable(out string why), "needs KVM: " + why);
        using var m = new Machine(2);
        const ulong page = 0xa00000;
        var reader = (KvmPlatformVcpu)m.Vcpus[1]!;
        VcpuExit exit = default;
        Task read = m.Threads[1].Post(() =>
        {
            Enter(reader, 1, ReadLoopEntry);
            reader.Regs.R13 = page;
            exit = reader.Run(); // never kicked by the test: only the fault ends it
        });
        var spin = new SpinWait();
        while (!reader.InGuest && !read.IsCompleted) spin.SpinOnce();
        Assert.False(read.IsCompleted, $"the reader stopped before the page was taken away: {exit}");

        // vCPU 0 takes the page away (munmap, mprotect PROT_NONE): when that returns, no vCPU may read it any more.
        m.Threads[0].Call(() => m.Vcpus[0]!.ProtectRange(page, 4096, 0));
        // The shootdown: by now vCPU 1 has left the guest or flushed. (Emulated SVM in kvm-lab drops guest TLB entries
        // on every world switch, so there the fault below would come without it; on hardware a stale entry stays.)
        long generation = reader.VmFlushGeneration;
        Assert.True(!reader.InGuest || reader.FlushedGeneration >= generation,
            $"ProtectRange returned while vCPU 1 was in the guest with TLB entries of flush generation {reader.FlushedGeneration} < {generation}");
        bool faulted = read.Wait(TimeSpan.FromMinutes(3)); // a liveness guard, not a timing: a stale TLB reads forever
        if (!faulted)
        {
            reader.Kick();
            read.Wait();
        }
        Assert.True(faulted, "vCPU 1 kept reading a page vCPU 0 took away: its TLB was not flushed");
        read.GetAwaiter().GetResult();
        Assert.Equal((VcpuExitKind.Fault, 11, page), (exit.Kind, exit.Signal, exit.FaultAddress));
        Assert.Equal(ReadLoopEntry, reader.Regs.Rip);
    }
}
