using System.Runtime.InteropServices;

namespace Remus.Kvm;

/// <summary><c>kvm_vcpu_events.exception</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmVcpuEventsException
{
    public byte Injected;
    public byte Nr;
    public byte HasErrorCode;
    public byte Pending;
    public uint ErrorCode;
}

/// <summary><c>kvm_vcpu_events.interrupt</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmVcpuEventsInterrupt
{
    public byte Injected;
    public byte Nr;
    public byte Soft;
    public byte Shadow;
}

/// <summary><c>kvm_vcpu_events.nmi</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmVcpuEventsNmi
{
    public byte Injected;
    public byte Pending;
    public byte Masked;
    public byte Pad;
}

/// <summary><c>kvm_vcpu_events.smi</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmVcpuEventsSmi
{
    public byte Smm;
    public byte Pending;
    public byte SmmInsideNmi;
    public byte LatchedInit;
}

/// <summary><c>kvm_vcpu_events.triple_fault</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmVcpuEventsTripleFault
{
    public byte Pending;
}

/// <summary><c>struct kvm_vcpu_events</c> (KVM_GET_VCPU_EVENTS / KVM_SET_VCPU_EVENTS): pending and injected
/// exceptions, interrupts, NMIs and SMIs, and the interrupt shadow. <see cref="Flags"/> (KVM_VCPUEVENT_VALID_*)
/// says which optional fields KVM_SET_VCPU_EVENTS applies; KVM_GET_VCPU_EVENTS fills it so a captured value can be
/// set back as is.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmVcpuEvents
{
    public KvmVcpuEventsException Exception;
    public KvmVcpuEventsInterrupt Interrupt;
    public KvmVcpuEventsNmi Nmi;
    public uint SipiVector;
    public uint Flags;
    public KvmVcpuEventsSmi Smi;
    public KvmVcpuEventsTripleFault TripleFault;
    public fixed byte Reserved[26];
    public byte ExceptionHasPayload;
    public ulong ExceptionPayload;
}
