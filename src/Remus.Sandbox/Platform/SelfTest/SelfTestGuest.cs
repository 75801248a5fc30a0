namespace Remus.Sandbox.Platform.SelfTest;

/// <summary>
/// The built-in guest a platform runs before it is trusted (<see cref="PlatformSelfTest"/>): machine code kept here as
/// bytes, so no compiler is needed at run time. It exercises what every static program needs from a vCPU — system
/// calls with arguments and results, FS base set by arch_prctl (TLS), SSE and (where CPUID and XCR0 offer it) AVX
/// registers that must survive system calls — and ends with a page fault whose signal and address must come back.
/// <para>Layout (all user memory, identity-mapped on both platforms): code at <see cref="Code"/>, the data page at
/// <see cref="Data"/> (patterns in, copies out, the loop count), the TLS block at <see cref="Tls"/>.</para>
/// <code>
///   xor r15d, r15d                 ; r15 = 1 when AVX is usable: CPUID.1:ECX OSXSAVE+AVX and XCR0 SSE+AVX
///   mov eax, 1 / cpuid / and ecx, 0x18000000 / cmp ecx, 0x18000000 / jne 1f
///   xor ecx, ecx / xgetbv / and eax, 6 / cmp eax, 6 / jne 1f / mov r15d, 1
/// 1: movdqu xmm0, [Data] / movdqu xmm7, [Data+0x10]
///   test r15d, r15d / jz 2f / vmovdqu ymm1, [Data+0x20]
/// 2: arch_prctl(ARCH_SET_FS, Tls)  (eax 158, edi 0x1002, esi Tls, syscall)
///   mov rbx, fs:[0]                ; the TLS magic through the new FS base
///   mov r12d, [Data+0x80]          ; the loop count N
/// 3: getpid(rdi = r12) (eax 39, syscall); the VMM answers rdi + 1
///   lea rdx, [r12+1] / cmp rax, rdx / jne 9f / dec r12d / jnz 3b
///   mov rbp, fs:[8]                ; FS base survived N system calls
///   movdqu [Data+0x40], xmm0 / movdqu [Data+0x50], xmm7 / (AVX) vmovdqu [Data+0x60], ymm1
///   exit(rdi = rbx, rsi = rbp, rdx = r15) (eax 60, syscall) ; the report
///   mov rax, [0x10]                ; the fault: SIGSEGV at address 0x10
/// 9: ud2                           ; a wrong result: SIGILL
/// </code>
/// </summary>
internal static class SelfTestGuest
{
    public const ulong Code = GuestMemory.UserBase;            // 0x200000
    public const ulong Data = GuestMemory.UserBase + 0x1000;   // 0x201000
    public const ulong Tls = GuestMemory.UserBase + 0x2000;    // 0x202000
    public const ulong StackTop = GuestMemory.UserBase + 0x10000;
    /// <summary>The guest RAM the self-test needs: the platform's reserved 2 MiB and 2 MiB of user memory.</summary>
    public const ulong MemorySize = 4UL << 20;

    public const int PatternIn = 0x00, PatternOut = 0x40, PatternLength = 0x40, LoopCount = 0x80;
    public const ulong FaultAddress = 0x10;
    public const int SysArchPrctl = 158, SysGetpid = 39, SysExit = 60, ArchSetFs = 0x1002;

    /// <summary>The bytes of the program above (assembled with GNU as; offsets in the comments).</summary>
    public static ReadOnlySpan<byte> Program =>
    [
        0x45, 0x31, 0xff,                               // 00 xor r15d, r15d
        0xb8, 0x01, 0x00, 0x00, 0x00,                   // 03 mov eax, 1
        0x0f, 0xa2,                                     // 08 cpuid
        0x81, 0xe1, 0x00, 0x00, 0x00, 0x18,             // 0a and ecx, 0x18000000
        0x81, 0xf9, 0x00, 0x00, 0x00, 0x18,             // 10 cmp ecx, 0x18000000
        0x75, 0x13,                                     // 16 jne 2b
        0x31, 0xc9,                                     // 18 xor ecx, ecx
        0x0f, 0x01, 0xd0,                               // 1a xgetbv
        0x83, 0xe0, 0x06,                               // 1d and eax, 6
        0x83, 0xf8, 0x06,                               // 20 cmp eax, 6
        0x75, 0x06,                                     // 23 jne 2b
        0x41, 0xbf, 0x01, 0x00, 0x00, 0x00,             // 25 mov r15d, 1
        0xf3, 0x0f, 0x6f, 0x04, 0x25, 0x00, 0x10, 0x20, 0x00, // 2b movdqu xmm0, [0x201000]
        0xf3, 0x0f, 0x6f, 0x3c, 0x25, 0x10, 0x10, 0x20, 0x00, // 34 movdqu xmm7, [0x201010]
        0x45, 0x85, 0xff,                               // 3d test r15d, r15d
        0x74, 0x09,                                     // 40 je 4b
        0xc5, 0xfe, 0x6f, 0x0c, 0x25, 0x20, 0x10, 0x20, 0x00, // 42 vmovdqu ymm1, [0x201020]
        0xb8, 0x9e, 0x00, 0x00, 0x00,                   // 4b mov eax, 158
        0xbf, 0x02, 0x10, 0x00, 0x00,                   // 50 mov edi, 0x1002
        0xbe, 0x00, 0x20, 0x20, 0x00,                   // 55 mov esi, 0x202000
        0x0f, 0x05,                                     // 5a syscall
        0x64, 0x48, 0x8b, 0x1c, 0x25, 0x00, 0x00, 0x00, 0x00, // 5c mov rbx, fs:[0]
        0x44, 0x8b, 0x24, 0x25, 0x80, 0x10, 0x20, 0x00, // 65 mov r12d, [0x201080]
        0xb8, 0x27, 0x00, 0x00, 0x00,                   // 6d mov eax, 39
        0x4c, 0x89, 0xe7,                               // 72 mov rdi, r12
        0x0f, 0x05,                                     // 75 syscall
        0x49, 0x8d, 0x54, 0x24, 0x01,                   // 77 lea rdx, [r12+1]
        0x48, 0x39, 0xd0,                               // 7c cmp rax, rdx
        0x75, 0x46,                                     // 7f jne c7
        0x41, 0xff, 0xcc,                               // 81 dec r12d
        0x75, 0xe7,                                     // 84 jne 6d
        0x64, 0x48, 0x8b, 0x2c, 0x25, 0x08, 0x00, 0x00, 0x00, // 86 mov rbp, fs:[8]
        0xf3, 0x0f, 0x7f, 0x04, 0x25, 0x40, 0x10, 0x20, 0x00, // 8f movdqu [0x201040], xmm0
        0xf3, 0x0f, 0x7f, 0x3c, 0x25, 0x50, 0x10, 0x20, 0x00, // 98 movdqu [0x201050], xmm7
        0x45, 0x85, 0xff,                               // a1 test r15d, r15d
        0x74, 0x09,                                     // a4 je af
        0xc5, 0xfe, 0x7f, 0x0c, 0x25, 0x60, 0x10, 0x20, 0x00, // a6 vmovdqu [0x201060], ymm1
        0xb8, 0x3c, 0x00, 0x00, 0x00,                   // af mov eax, 60
        0x48, 0x89, 0xdf,                               // b4 mov rdi, rbx
        0x48, 0x89, 0xee,                               // b7 mov rsi, rbp
        0x4c, 0x89, 0xfa,                               // ba mov rdx, r15
        0x0f, 0x05,                                     // bd syscall
        0x48, 0x8b, 0x04, 0x25, 0x10, 0x00, 0x00, 0x00, // bf mov rax, [0x10]
        0x0f, 0x0b,                                     // c7 ud2
    ];

    /// <summary>Where the final fault happens (for the check of the faulting rip).</summary>
    public const ulong FaultRip = Code + 0xbf;
}
