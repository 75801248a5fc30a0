using System.Runtime.Intrinsics.X86;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Sandbox.Platform;

/// <summary>
/// The vCPU contract every platform keeps, on each platform this machine has (tiny ring-3 programs as raw machine
/// code at 0x400000, listings in the comments): system calls arrive with the user view of the registers, FS base and
/// the extended state (xmm, ymm) go to a fresh vCPU as a restore moves them, a kick stops a spinning program, and
/// the dirty log reports what the program wrote. The platform-specific details (segments, stubs, ports, diagnostics)
/// are in Sandbox/Kvm and the ptrace tests.
/// </summary>
public sealed class PlatformVcpuTests
{
    private const ulong Code = 0x400000;
    private const ulong StackTop = 0x7ff000;
    private const ulong Data = 0x600000;

    /// <summary>A vCPU of <paramref name="Kind"/> over 8 MiB of RAM with the code at 0x400000, registers set up as
    /// SandboxDomain does. Made and used on the test's thread (a ptrace vCPU belongs to its tracer thread).</summary>
    private sealed class Guest : IDisposable
    {
        public GuestMemory Memory { get; }
        public IVcpu Vcpu { get; private set; }
        private readonly PlatformKind _kind;

        public Guest(PlatformKind kind, byte[] code)
        {
            _kind = kind;
            Memory = new GuestMemory(8UL << 20);
            Memory.Write(Code, code);
            Vcpu = PlatformSelector.Create(Memory, kind);
            ref var r = ref Vcpu.Regs;
            ulong cs = r.Cs, ss = r.Ss, ds = r.Ds;
            r = default;
            r.Cs = cs; r.Ss = ss; r.Ds = ds; r.Es = ds;
            r.Rip = Code;
            r.Rsp = StackTop;
            r.Eflags = 0x202;
            r.OrigRax = ulong.MaxValue;
        }

        /// <summary>Replaces the vCPU by a fresh one over the same RAM, with the registers and extended state it had:
        /// what a restore does (segments are the new vCPU's own, as SandboxDomain.LoadState keeps them).</summary>
        public void MoveToAFreshVcpu()
        {
            UserRegs saved = Vcpu.Regs;
            byte[] state = Vcpu.SaveExtendedState();
            Assert.NotEmpty(state);
            Vcpu.Dispose();
            Vcpu = PlatformSelector.Create(Memory, _kind);
            ref var r = ref Vcpu.Regs;
            saved.Cs = r.Cs; saved.Ss = r.Ss; saved.Ds = r.Ds; saved.Es = r.Es; saved.Fs = r.Fs; saved.Gs = r.Gs;
            r = saved;
            Vcpu.RestoreExtendedState(state);
        }

        /// <summary>Runs until an exit other than a kick.</summary>
        public VcpuExit Run()
        {
            VcpuExit exit;
            do exit = Vcpu.Run(); while (exit.Kind == VcpuExitKind.Kicked);
            return exit;
        }

        public void Dispose()
        {
            Vcpu.Dispose();
            Memory.Dispose();
        }
    }

    //  0: 48 8d 35 2d 00 00 00     lea    rsi,[rip+0x2d]          # msg at 0x34
    //  7: bf 01 00 00 00           mov    edi,0x1
    //  c: ba 06 00 00 00           mov    edx,0x6
    // 11: 48 c7 44 24 f8 5a 5a 00 00  mov QWORD PTR [rsp-0x8],0x5a5a   # a value in the red zone
    // 1a: b8 01 00 00 00           mov    eax,0x1                  # write
    // 1f: 0f 05                    syscall
    // 21: 49 89 c4                 mov    r12,rax
    // 24: 48 8b 7c 24 f8           mov    rdi,QWORD PTR [rsp-0x8]  # the red zone value survives the syscall
    // 29: 4c 89 e6                 mov    rsi,r12
    // 2c: b8 3c 00 00 00           mov    eax,0x3c                 # exit(red zone value)
    // 31: 0f 05                    syscall
    // 33: f4                       hlt
    // 34: "hello\n"
    private static readonly byte[] Hello =
    [
        0x48, 0x8d, 0x35, 0x2d, 0x00, 0x00, 0x00, 0xbf, 0x01, 0x00, 0x00, 0x00, 0xba, 0x06, 0x00, 0x00, 0x00,
        0x48, 0xc7, 0x44, 0x24, 0xf8, 0x5a, 0x5a, 0x00, 0x00, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x05,
        0x49, 0x89, 0xc4, 0x48, 0x8b, 0x7c, 0x24, 0xf8, 0x4c, 0x89, 0xe6, 0xb8, 0x3c, 0x00, 0x00, 0x00, 0x0f, 0x05,
        0xf4, (byte)'h', (byte)'e', (byte)'l', (byte)'l', (byte)'o', (byte)'\n',
    ];

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Write_and_exit_arrive_as_syscalls_with_the_user_view_of_the_registers(PlatformKind platform)
    {
        Platforms.Require(platform);
        using var g = new Guest(platform, Hello);
        Assert.Equal(VcpuExit.SyscallExit, g.Run());
        ref var r = ref g.Vcpu.Regs;
        Assert.Equal(1UL, r.OrigRax);
        Assert.Equal(1UL, r.Rdi);
        Assert.Equal(Code + 0x34, r.Rsi);
        Assert.Equal(6UL, r.Rdx);
        Assert.Equal(Code + 0x21, r.Rip);         // the instruction after syscall
        Assert.Equal(StackTop, r.Rsp);            // the user rsp
        Assert.Equal(0x200UL, r.Eflags & 0x200);  // IF

        r.Rax = 6; // write's result
        Assert.Equal(VcpuExit.SyscallExit, g.Run());
        Assert.Equal(60UL, r.OrigRax);
        Assert.Equal(0x5a5aUL, r.Rdi);            // the red zone below rsp was not touched
        Assert.Equal(6UL, r.Rsi);                 // the result we set reached the program
        Assert.Equal(Code + 0x33, r.Rip);
        Assert.Equal(StackTop, r.Rsp);
    }

    //  0: b8 f4 01 00 00             mov eax, 500
    //  5: 0f 05                      syscall
    //  7: 64 48 8b 3c 25 00 00 00 00 mov rdi, fs:[0]
    // 10: b8 3c 00 00 00             mov eax, 60
    // 15: 0f 05                      syscall
    private static readonly byte[] ReadFs =
        [0xb8, 0xf4, 0x01, 0x00, 0x00, 0x0f, 0x05, 0x64, 0x48, 0x8b, 0x3c, 0x25, 0x00, 0x00, 0x00, 0x00, 0xb8, 0x3c, 0x00, 0x00, 0x00, 0x0f, 0x05];

    /// <summary>An FS base set through Regs (as arch_prctl does) reaches the program, also on a fresh vCPU.</summary>
    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void FS_base_set_through_Regs_reaches_the_program_also_after_a_move_to_a_fresh_vCPU(PlatformKind platform)
    {
        Platforms.Require(platform);
        using var g = new Guest(platform, ReadFs);
        Assert.Equal(VcpuExit.SyscallExit, g.Run());
        g.Memory.WriteU64(Data, 0x1234_5678_9abc);
        g.Vcpu.Regs.FsBase = Data;
        g.Vcpu.Regs.Rax = 0;
        g.MoveToAFreshVcpu();
        Assert.Equal(VcpuExit.SyscallExit, g.Run());
        Assert.Equal(60UL, g.Vcpu.Regs.OrigRax);
        Assert.Equal(0x1234_5678_9abcUL, g.Vcpu.Regs.Rdi);
        Assert.Equal(Data, g.Vcpu.Regs.FsBase);
    }

    //  0: 48 b8 88 77 66 55 44 33 22 11  movabs rax, 0x1122334455667788
    //  a: 66 48 0f 6e c0                 movq   xmm0, rax
    //  f: b8 f4 01 00 00                 mov    eax, 500
    // 14: 0f 05                          syscall
    // 16: 66 48 0f 7e c7                 movq   rdi, xmm0
    // 1b: b8 3c 00 00 00                 mov    eax, 60
    // 20: 0f 05                          syscall
    private static readonly byte[] KeepXmm =
    [
        0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x66, 0x48, 0x0f, 0x6e, 0xc0,
        0xb8, 0xf4, 0x01, 0x00, 0x00, 0x0f, 0x05, 0x66, 0x48, 0x0f, 0x7e, 0xc7, 0xb8, 0x3c, 0x00, 0x00, 0x00, 0x0f, 0x05,
    ];

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Extended_state_carries_SSE_registers_to_a_fresh_vCPU(PlatformKind platform)
    {
        Platforms.Require(platform);
        using var g = new Guest(platform, KeepXmm);
        Assert.Equal(VcpuExit.SyscallExit, g.Run());
        Assert.Equal(500UL, g.Vcpu.Regs.OrigRax);
        g.Vcpu.Regs.Rax = 0;
        g.MoveToAFreshVcpu();
        Assert.Equal(VcpuExit.SyscallExit, g.Run());
        Assert.Equal(60UL, g.Vcpu.Regs.OrigRax);
        Assert.Equal(0x1122334455667788UL, g.Vcpu.Regs.Rdi);
    }

    //  0: c5 fe 6f 04 25 00 00 60 00     vmovdqu ymm0, [0x600000]
    //  9: c5 7e 6f 0c 25 20 00 60 00     vmovdqu ymm9, [0x600020]
    // 12: b8 f4 01 00 00                 mov eax, 500
    // 17: 0f 05                          syscall
    // 19: c5 fe 7f 04 25 40 00 60 00     vmovdqu [0x600040], ymm0
    // 22: c5 7e 7f 0c 25 60 00 60 00     vmovdqu [0x600060], ymm9
    // 2b: b8 3c 00 00 00                 mov eax, 60
    // 30: 0f 05                          syscall
    private static readonly byte[] KeepYmm =
    [
        0xc5, 0xfe, 0x6f, 0x04, 0x25, 0x00, 0x00, 0x60, 0x00, 0xc5, 0x7e, 0x6f, 0x0c, 0x25, 0x20, 0x00, 0x60, 0x00,
        0xb8, 0xf4, 0x01, 0x00, 0x00, 0x0f, 0x05,
        0xc5, 0xfe, 0x7f, 0x04, 0x25, 0x40, 0x00, 0x60, 0x00, 0xc5, 0x7e, 0x7f, 0x0c, 0x25, 0x60, 0x00, 0x60, 0x00,
        0xb8, 0x3c, 0x00, 0x00, 0x00, 0x0f, 0x05,
    ];

    /// <summary>The upper halves of ymm registers (the AVX component of the XSAVE area) go to a fresh vCPU too.</summary>
    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Extended_state_carries_AVX_registers_whole_to_a_fresh_vCPU(PlatformKind platform)
    {
        Platforms.Require(platform);
        Skip.IfNot(Avx.IsSupported, "the host CPU has no AVX");
        using var g = new Guest(platform, KeepYmm);
        byte[] pattern = new byte[64];
        for (int i = 0; i < pattern.Length; i++) pattern[i] = (byte)(i * 37 + 11);
        g.Memory.Write(Data, pattern);
        Assert.Equal(VcpuExit.SyscallExit, g.Run());
        Assert.Equal(500UL, g.Vcpu.Regs.OrigRax);
        g.Vcpu.Regs.Rax = 0;
        g.MoveToAFreshVcpu();
        Assert.Equal(VcpuExit.SyscallExit, g.Run());
        Assert.Equal(60UL, g.Vcpu.Regs.OrigRax);
        Assert.Equal(pattern, g.Memory.Span(Data + 0x40, 64).ToArray());
    }

    //  0: eb fe                jmp 0
    //  2: b8 3c 00 00 00       mov eax, 60
    //  7: bf 03 00 00 00       mov edi, 3
    //  c: 0f 05                syscall
    private static readonly byte[] Spin = [0xeb, 0xfe, 0xb8, 0x3c, 0x00, 0x00, 0x00, 0xbf, 0x03, 0x00, 0x00, 0x00, 0x0f, 0x05];

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void A_kick_from_another_thread_stops_a_spinning_program_which_then_goes_on_where_told(PlatformKind platform)
    {
        Platforms.Require(platform);
        using var g = new Guest(platform, Spin);
        var vcpu = g.Vcpu;
        using var kicker = new Timer(_ => vcpu.Kick(), null, 200, 200); // keeps kicking until disposed
        var exit = vcpu.Run();
        kicker.Change(Timeout.Infinite, Timeout.Infinite);
        Assert.Equal(VcpuExit.KickedExit, exit);
        Assert.Equal(Code, g.Vcpu.Regs.Rip); // in the loop

        Thread.Sleep(300); // a kick may still be in flight: the next runs must cope
        g.Vcpu.Regs.Rip = Code + 2; // leave the loop
        Assert.Equal(VcpuExit.SyscallExit, g.Run());
        Assert.Equal(60UL, g.Vcpu.Regs.OrigRax);
        Assert.Equal(3UL, g.Vcpu.Regs.Rdi);
    }

    //  0: c6 04 25 00 00 50 00 01   mov byte [0x500000], 1
    //  8: b8 27 00 00 00            mov eax, 39
    //  d: 0f 05                     syscall
    //  f: b8 27 00 00 00            mov eax, 39
    // 14: 0f 05                     syscall
    // 16: eb e8                     jmp 0
    private static readonly byte[] WriteThenIdle =
    [
        0xc6, 0x04, 0x25, 0x00, 0x00, 0x50, 0x00, 0x01, 0xb8, 0x27, 0x00, 0x00, 0x00, 0x0f, 0x05,
        0xb8, 0x27, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xe8,
    ];

    /// <summary>A page the program writes is reported by the next harvest, not by the one after unless written again
    /// (over-reporting other pages is allowed; missing a write is not).</summary>
    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void The_dirty_log_reports_a_page_the_program_wrote_and_rearms_it(PlatformKind platform)
    {
        Platforms.Require(platform);
        using var g = new Guest(platform, WriteThenIdle);
        g.Vcpu.StartDirtyLog();
        bool Reported()
        {
            var bitmap = new ulong[g.Memory.BitmapWords];
            g.Vcpu.HarvestDirty(bitmap);
            return (bitmap[0x500 / 64] & (1UL << (0x500 % 64))) != 0;
        }
        Reported();

        Assert.Equal(VcpuExit.SyscallExit, g.Run()); // wrote 0x500000
        Assert.True(Reported(), "the page the program wrote was not reported");
        Assert.Equal(VcpuExit.SyscallExit, g.Run()); // wrote nothing
        Assert.False(Reported(), "a page not written since the last harvest was reported");
        Assert.Equal(VcpuExit.SyscallExit, g.Run()); // wrote 0x500000 again
        Assert.True(Reported(), "the page written again after its harvest was not reported");
    }
}
