using System.Security.Cryptography;

namespace Remus.Sandbox.Kernel;

/// <summary>getrandom.</summary>
internal sealed partial class SandboxKernel
{
    private const uint GRND_NONBLOCK = 1, GRND_RANDOM = 2, GRND_INSECURE = 4;

    private long SysGetRandom(ulong buf, ulong count, uint flags)
    {
        if ((flags & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE)) != 0) return -Errno.EINVAL;
        // Up to the first page the program may not write: the short count Linux returns there (EFAULT if none).
        return ReadIntoUser(buf, count, 1 << 25, b =>
        {
            RandomNumberGenerator.Fill(b);
            return b.Length;
        });
    }
}
