using System.Runtime.InteropServices;

namespace Remus.Kvm;

/// <summary><c>struct kvm_dirty_log</c> (KVM_GET_DIRTY_LOG): one bit per page of the slot, written by the kernel to
/// <see cref="DirtyBitmap"/> (a host pointer).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmDirtyLog
{
    public uint Slot;
    public uint Padding1;
    public ulong DirtyBitmap;
}

/// <summary><c>struct kvm_clear_dirty_log</c> (KVM_CLEAR_DIRTY_LOG, with KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2): re-arm
/// dirty tracking for the pages whose bits are set, <see cref="NumPages"/> bits from <see cref="FirstPage"/>.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmClearDirtyLog
{
    public uint Slot;
    public uint NumPages;
    public ulong FirstPage;
    public ulong DirtyBitmap;
}
