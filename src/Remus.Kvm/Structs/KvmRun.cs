using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace Remus.Kvm;

/// <summary><c>kvm_run.hw</c> (KVM_EXIT_UNKNOWN).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmRunHw
{
    public ulong HardwareExitReason;
}

/// <summary><c>kvm_run.fail_entry</c> (KVM_EXIT_FAIL_ENTRY).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmRunFailEntry
{
    public ulong HardwareEntryFailureReason;
    public uint Cpu;
}

/// <summary><c>kvm_run.ex</c> (KVM_EXIT_EXCEPTION).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmRunEx
{
    public uint Exception;
    public uint ErrorCode;
}

/// <summary><c>kvm_run.io</c> (KVM_EXIT_IO). The data (<see cref="Size"/> × <see cref="Count"/> bytes) lies at
/// <see cref="DataOffset"/> from the start of kvm_run; for IN the VMM fills it before the next KVM_RUN.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmRunIo
{
    /// <summary>KVM_EXIT_IO_IN (0) or KVM_EXIT_IO_OUT (1).</summary>
    public byte Direction;
    /// <summary>Bytes per access: 1, 2 or 4.</summary>
    public byte Size;
    public ushort Port;
    public uint Count;
    public ulong DataOffset;
}

/// <summary><c>kvm_run.mmio</c> (KVM_EXIT_MMIO). For reads the VMM fills <see cref="Data"/> before the next KVM_RUN.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmRunMmio
{
    public ulong PhysAddr;
    public fixed byte Data[8];
    public uint Len;
    public byte IsWrite;

    [UnscopedRef]
    public Span<byte> DataBytes => MemoryMarshal.CreateSpan(ref Data[0], 8);
}

/// <summary><c>kvm_run.internal</c> (KVM_EXIT_INTERNAL_ERROR).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmRunInternal
{
    /// <summary>KVM_INTERNAL_ERROR_EMULATION, _SIMUL_EX, _DELIVERY_EV, _UNEXPECTED_EXIT_REASON.</summary>
    public uint Suberror;
    /// <summary>How many of <see cref="Data"/> are valid.</summary>
    public uint Ndata;
    public fixed ulong Data[16];

    [UnscopedRef]
    public Span<ulong> DataSpan => MemoryMarshal.CreateSpan(ref Data[0], 16);
}

/// <summary><c>kvm_run.system_event</c> (KVM_EXIT_SYSTEM_EVENT).</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmRunSystemEvent
{
    /// <summary>KVM_SYSTEM_EVENT_SHUTDOWN, _RESET, _CRASH, ...</summary>
    public uint Type;
    public uint Ndata;
    /// <summary>The anonymous union { flags; data[16] } (data[0] is the old flags).</summary>
    public fixed ulong Data[16];
}

/// <summary>The anonymous 256-byte exit union of <c>struct kvm_run</c>; which member is valid depends on
/// <see cref="KvmRun.ExitReason"/>.</summary>
[StructLayout(LayoutKind.Explicit, Size = 256)]
public struct KvmRunExit
{
    [FieldOffset(0)] public KvmRunHw Hw;
    [FieldOffset(0)] public KvmRunFailEntry FailEntry;
    [FieldOffset(0)] public KvmRunEx Ex;
    [FieldOffset(0)] public KvmRunIo Io;
    [FieldOffset(0)] public KvmRunMmio Mmio;
    [FieldOffset(0)] public KvmRunInternal Internal;
    [FieldOffset(0)] public KvmRunSystemEvent SystemEvent;
}

/// <summary>
/// <c>struct kvm_run</c>: the page the kernel shares with the vCPU thread through mmap of the vCPU fd
/// (<see cref="KvmVcpu.RunData"/>). The kernel writes the "out" fields on every exit; <see cref="ImmediateExit"/> and
/// <see cref="RequestInterruptWindow"/> are read by the kernel on entry. The mapping is larger than this struct
/// (KVM_GET_VCPU_MMAP_SIZE): the PIO data page follows.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmRun
{
    // in
    public byte RequestInterruptWindow;
    /// <summary>Nonzero: KVM_RUN returns EINTR at once without entering the guest (KVM_CAP_IMMEDIATE_EXIT).</summary>
    public byte ImmediateExit;
    public fixed byte Padding1[6];

    // out
    public KvmExitReason ExitReason;
    public byte ReadyForInterruptInjection;
    public byte IfFlag;
    public ushort Flags;

    // in (pre_kvm_run), out (post_kvm_run)
    public ulong Cr8;
    public ulong ApicBase;

    /// <summary>The anonymous exit union (io, mmio, fail_entry, internal, ...).</summary>
    public KvmRunExit Exit;

    public ulong KvmValidRegs;
    public ulong KvmDirtyRegs;
    /// <summary>union { struct kvm_sync_regs regs; char padding[2048]; } s — unused by Remus.</summary>
    public fixed byte S[2048];
}
