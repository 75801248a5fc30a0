using System.Buffers.Binary;
using System.Diagnostics;

namespace Remus.Sandbox.Platform.SelfTest;

/// <summary>What a platform's self-test found.</summary>
/// <param name="Platform">The platform tested.</param>
/// <param name="Passed">Every check held.</param>
/// <param name="Problem">When not passed: what went wrong, one line. "" when passed.</param>
/// <param name="SyscallMicros">The median syscall round trip (guest <c>syscall</c> to the VMM and back), µs; NaN
/// when the guest did not get as far as the measured loop.</param>
/// <param name="ElapsedMs">What the whole self-test cost, vCPU creation included, ms.</param>
/// <param name="Avx">The guest found AVX usable (CPUID and XCR0) and the ymm upper halves were checked too.</param>
/// <param name="DirtyLog">The platform's dirty log as the self-test saw it ("none" when it has none).</param>
public sealed record SelfTestResult(PlatformKind Platform, bool Passed, string Problem, double SyscallMicros, double ElapsedMs,
    bool Avx, string DirtyLog)
{
    /// <summary>For logs: "passed, syscall 28 µs" or "failed: ...".</summary>
    public string Summary => Passed ? $"passed, syscall {Micros(SyscallMicros)}" : $"failed: {Problem}";

    internal static string Micros(double us) => double.IsNaN(us) ? "? µs" : us < 10 ? $"{us:0.0} µs" : $"{us:0} µs";
}

/// <summary>
/// Runs <see cref="SelfTestGuest"/> on a fresh vCPU of one platform, serves its system calls, checks every result
/// and measures the system call round trip. Runs on a thread of its own (a vCPU binds to its thread; the caller's
/// thread keeps its signal mask), with a watchdog that kicks a vCPU that does not come back.
/// </summary>
internal static class PlatformSelfTest
{
    /// <summary>Measured round trips (after two unmeasured ones): few enough to cost a few ms even at ~140 µs each.</summary>
    public const int Syscalls = 24;

    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private const ulong TlsMagic0 = 0x7e57_f5ba_5e00_0001, TlsMagic1 = 0x7e57_f5ba_5e00_0002;

    public static SelfTestResult Run(PlatformKind platform, Func<GuestMemory, IVcpu> createVcpu)
    {
        var watch = Stopwatch.StartNew();
        IVcpu? running = null;
        SelfTestResult? result = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var memory = new GuestMemory(SelfTestGuest.MemorySize);
                Prepare(memory);
                using var vcpu = createVcpu(memory);
                Volatile.Write(ref running, vcpu);
                result = Exercise(platform, memory, vcpu, watch);
            }
            catch (Exception e) // whatever the platform throws, the VMM goes on (with the other platform)
            {
                result = Failed(platform, e.Message, double.NaN, watch);
            }
            finally
            {
                Volatile.Write(ref running, null);
            }
        }) { IsBackground = true, Name = $"self-test {platform.ToString().ToLowerInvariant()}" };
        thread.Start();
        if (!thread.Join(Patience))
        {
            // A vCPU that never comes back: kick it (Run then returns Kicked, which fails the test) and wait a little.
            Volatile.Read(ref running)?.Kick();
            if (!thread.Join(TimeSpan.FromSeconds(5)))
                return Failed(platform, $"the guest did not finish within {Patience.TotalSeconds:0} s", double.NaN, watch);
        }
        return result ?? Failed(platform, "no result", double.NaN, watch);
    }

    private static void Prepare(GuestMemory memory)
    {
        SelfTestGuest.Program.CopyTo(memory.WritableSpan(SelfTestGuest.Code, SelfTestGuest.Program.Length));
        var data = memory.WritableSpan(SelfTestGuest.Data, 0x100);
        for (int i = 0; i < SelfTestGuest.PatternLength; i++) data[SelfTestGuest.PatternIn + i] = (byte)(0xa5 ^ (i * 37));
        BinaryPrimitives.WriteInt32LittleEndian(data[SelfTestGuest.LoopCount..], Syscalls + 2);
        var tls = memory.WritableSpan(SelfTestGuest.Tls, 16);
        BinaryPrimitives.WriteUInt64LittleEndian(tls, TlsMagic0);
        BinaryPrimitives.WriteUInt64LittleEndian(tls[8..], TlsMagic1);
    }

    private static SelfTestResult Exercise(PlatformKind platform, GuestMemory memory, IVcpu vcpu, Stopwatch watch)
    {
        string dirtyLog = StartDirtyLog(vcpu);
        ref var r = ref vcpu.Regs;
        ulong cs = r.Cs, ss = r.Ss, ds = r.Ds;
        r = default;
        r.Cs = cs; r.Ss = ss; r.Ds = ds; r.Es = ds;
        r.Rip = SelfTestGuest.Code;
        r.Rsp = SelfTestGuest.StackTop;
        r.Eflags = 0x202;
        r.OrigRax = ulong.MaxValue;

        // 1. arch_prctl(ARCH_SET_FS, Tls)
        if (Expect(vcpu, SelfTestGuest.SysArchPrctl, "arch_prctl") is { } p1) return Failed(platform, p1, double.NaN, watch);
        ref var regs = ref vcpu.Regs;
        if (regs.Rdi != SelfTestGuest.ArchSetFs || regs.Rsi != SelfTestGuest.Tls)
            return Failed(platform, $"arch_prctl arrived with arguments 0x{regs.Rdi:x}, 0x{regs.Rsi:x} instead of 0x{SelfTestGuest.ArchSetFs:x}, 0x{SelfTestGuest.Tls:x}", double.NaN, watch);
        regs.FsBase = regs.Rsi;
        regs.Rax = 0;

        // 2. the loop: getpid(n) for n = N..1, answered n + 1; the round trips between exits are timed.
        int n = Syscalls + 2;
        var times = new long[n];
        for (int i = 0; i < n; i++)
        {
            if (Expect(vcpu, SelfTestGuest.SysGetpid, "getpid") is { } p2) return Failed(platform, p2, double.NaN, watch);
            times[i] = Stopwatch.GetTimestamp();
            regs = ref vcpu.Regs;
            if (regs.Rdi != (ulong)(n - i))
                return Failed(platform, $"system call {i + 2} arrived with rdi {regs.Rdi} instead of {n - i}", double.NaN, watch);
            regs.Rax = regs.Rdi + 1;
        }
        double micros = Median(times);

        // 3. the report: exit(fs:[0], fs:[8], avx)
        if (Expect(vcpu, SelfTestGuest.SysExit, "the final report") is { } p3) return Failed(platform, p3, micros, watch);
        regs = ref vcpu.Regs;
        if (regs.Rdi != TlsMagic0)
            return Failed(platform, $"the FS base set by arch_prctl did not take effect (fs:[0] read 0x{regs.Rdi:x})", micros, watch);
        if (regs.Rsi != TlsMagic1)
            return Failed(platform, $"the FS base did not survive system calls (fs:[8] read 0x{regs.Rsi:x})", micros, watch);
        bool avx = regs.Rdx == 1;
        var data = memory.Span(SelfTestGuest.Data, 0x100);
        int checkedBytes = avx ? 0x40 : 0x20; // xmm0, xmm7 (and ymm1)
        for (int i = 0; i < checkedBytes; i++)
            if (data[SelfTestGuest.PatternOut + i] != data[SelfTestGuest.PatternIn + i])
                return Failed(platform, $"{(i < 0x10 ? "xmm0" : i < 0x20 ? "xmm7" : i < 0x30 ? "ymm1 (low half)" : "ymm1 (high half)")} changed across system calls", micros, watch);
        regs.Rax = 0;

        // 4. the fault: SIGSEGV at address 0x10, from the faulting instruction.
        var exit = vcpu.Run();
        regs = ref vcpu.Regs;
        if (exit.Kind != VcpuExitKind.Fault || exit.Signal != 11 || exit.FaultAddress != SelfTestGuest.FaultAddress)
            return Failed(platform, $"a read of address 0x{SelfTestGuest.FaultAddress:x} should end in SIGSEGV at that address; got {Describe(exit, regs)}", micros, watch);
        if (regs.Rip != SelfTestGuest.FaultRip)
            return Failed(platform, $"the fault was reported at rip 0x{regs.Rip:x} instead of 0x{SelfTestGuest.FaultRip:x}", micros, watch);

        dirtyLog = CheckDirtyLog(vcpu, memory, dirtyLog);
        return new SelfTestResult(platform, true, "", micros, watch.Elapsed.TotalMilliseconds, avx, dirtyLog);
    }

    /// <summary>Runs the vCPU to the next exit; null when it is system call <paramref name="nr"/>, else the problem.</summary>
    private static string? Expect(IVcpu vcpu, int nr, string what)
    {
        var exit = vcpu.Run();
        var regs = vcpu.Regs;
        if (exit.Kind == VcpuExitKind.Syscall && regs.OrigRax == (ulong)nr) return null;
        return $"the guest should have made system call {nr} ({what}); got {Describe(exit, regs)}";
    }

    private static string Describe(VcpuExit exit, in UserRegs regs) => exit.Kind switch
    {
        VcpuExitKind.Syscall => $"system call {(long)regs.OrigRax} at rip 0x{regs.Rip:x}",
        VcpuExitKind.Fault => $"signal {exit.Signal} at rip 0x{regs.Rip:x} (address 0x{exit.FaultAddress:x})",
        _ => "a kick (no exit within the time allowed)",
    };

    private static string StartDirtyLog(IVcpu vcpu)
    {
        try
        {
            vcpu.StartDirtyLog();
            return "started";
        }
        catch (NotSupportedException)
        {
            return "none";
        }
        catch (SandboxException e)
        {
            return $"unavailable ({e.Message})";
        }
    }

    /// <summary>The dirty log, if the platform has one, must have seen the guest's stores to the data page.</summary>
    private static string CheckDirtyLog(IVcpu vcpu, GuestMemory memory, string state)
    {
        if (state != "started") return state;
        var bitmap = new ulong[(memory.Size / GuestMemory.PageSize + 63) / 64];
        vcpu.HarvestDirty(bitmap);
        ulong page = SelfTestGuest.Data / GuestMemory.PageSize;
        return (bitmap[page / 64] & (1UL << (int)(page % 64))) != 0 ? vcpu.DirtyLogMode : $"{vcpu.DirtyLogMode} (missed a guest write)";
    }

    /// <summary>The median time between consecutive system call exits, after the first two (warm-up), in µs.</summary>
    private static double Median(long[] times)
    {
        var deltas = new double[times.Length - 3];
        for (int i = 3; i < times.Length; i++)
            deltas[i - 3] = (times[i] - times[i - 1]) * 1e6 / Stopwatch.Frequency;
        Array.Sort(deltas);
        return deltas.Length % 2 == 1 ? deltas[deltas.Length / 2] : (deltas[deltas.Length / 2 - 1] + deltas[deltas.Length / 2]) / 2;
    }

    private static SelfTestResult Failed(PlatformKind platform, string problem, double micros, Stopwatch watch) =>
        new(platform, false, problem, micros, watch.Elapsed.TotalMilliseconds, false, "");
}
