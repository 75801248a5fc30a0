using System.Runtime.InteropServices;

namespace Remus.Kvm;

/// <summary><c>struct kvm_mp_state</c> (KVM_GET_MP_STATE / KVM_SET_MP_STATE): KVM_MP_STATE_RUNNABLE, _HALTED, ...
/// Without an in-kernel irqchip only RUNNABLE can be set.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmMpState
{
    public uint MpState;

    public KvmMpState(uint mpState) => MpState = mpState;
}
