using Remus.Sandbox.Kernel.Files;

namespace Remus.Sandbox.Kernel;

/// <summary>eventfd, eventfd2.</summary>
internal sealed partial class SandboxKernel
{
    private const int EFD_SEMAPHORE = 1;

    private long SysEventFd2(uint initial, int flags)
    {
        if ((flags & ~(EFD_SEMAPHORE | O_CLOEXEC | O_NONBLOCK)) != 0) return -Errno.EINVAL;
        var f = new EventFdFile(initial, (flags & EFD_SEMAPHORE) != 0) { Flags = O_RDWR | (flags & O_NONBLOCK) };
        return Fds.Add(f, (flags & O_CLOEXEC) != 0);
    }
}
