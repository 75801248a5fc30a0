namespace Remus.Kvm;

/// <summary>
/// KVM cannot be used on this host: /dev/kvm is missing, not accessible, not a KVM device, or of the wrong API
/// version. The message is one line meant for the user, e.g.
/// "/dev/kvm does not exist: this host offers no KVM (load kvm_intel or kvm_amd, or use a host with virtualization enabled)".
/// </summary>
public sealed class KvmUnavailableException : Exception
{
    public KvmUnavailableException(string message) : base(message) { }

    public KvmUnavailableException(string message, Exception inner) : base(message, inner) { }
}
