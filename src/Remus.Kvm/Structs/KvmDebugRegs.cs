using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace Remus.Kvm;

/// <summary><c>struct kvm_debugregs</c> (KVM_GET_DEBUGREGS / KVM_SET_DEBUGREGS): DR0-DR3, DR6, DR7.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct KvmDebugRegs
{
    public fixed ulong Db[4];
    public ulong Dr6;
    public ulong Dr7;
    public ulong Flags;
    public fixed ulong Reserved[9];

    [UnscopedRef]
    public Span<ulong> DbSpan => MemoryMarshal.CreateSpan(ref Db[0], 4);
}
