using Remus.Kvm.Native;

namespace Remus.Kvm;

/// <summary>A KVM ioctl (or mmap of a vCPU) failed. <see cref="Errno"/> is the Linux error number.</summary>
public sealed class KvmException : Exception
{
    public KvmException(string operation, int errno)
        : base($"{operation} failed: {Libc.ErrnoText(errno)}")
    {
        Operation = operation;
        Errno = errno;
    }

    public KvmException(string message) : base(message)
    {
        Operation = "";
    }

    /// <summary>The ioctl name ("KVM_SET_SREGS") or other operation that failed.</summary>
    public string Operation { get; }

    /// <summary>The errno value, or 0 when the failure was not a system call error.</summary>
    public int Errno { get; }
}
