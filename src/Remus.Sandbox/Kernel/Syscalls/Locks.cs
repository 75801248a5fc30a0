using Remus.Sandbox.Kernel.Files;

namespace Remus.Sandbox.Kernel;

/// <summary>flock and fcntl record locks (F_GETLK/F_SETLK/F_SETLKW, OFD locks): Kernel/Locks.</summary>
internal sealed partial class SandboxKernel
{
    private long SysFlock(int fd, int operation) => Fds.Get(fd) == null ? -Errno.EBADF : -Errno.ENOSYS;

    private long SysFcntlLock(int fd, FileDescription f, int cmd, ulong arg) => -Errno.EINVAL;
}
