namespace Remus.Kvm.Native;

/// <summary>ioctl wrappers that turn -1/errno into <see cref="KvmException"/>.</summary>
internal static unsafe class Ioctl
{
    /// <summary>ioctl with a pointer argument; returns the (non-negative) result.</summary>
    public static int Ptr(int fd, ulong request, void* arg)
    {
        int r = Libc.ioctl(fd, request, arg);
        if (r < 0) throw new KvmException(KvmIoctls.NameOf(request), Libc.Errno);
        return r;
    }

    /// <summary>ioctl with an integer argument; returns the (non-negative) result.</summary>
    public static int Value(int fd, ulong request, nuint arg)
    {
        int r = Libc.ioctl(fd, request, arg);
        if (r < 0) throw new KvmException(KvmIoctls.NameOf(request), Libc.Errno);
        return r;
    }

    /// <summary>ioctl with a pointer argument that reports errno instead of throwing.</summary>
    public static int TryPtr(int fd, ulong request, void* arg, out int errno)
    {
        int r = Libc.ioctl(fd, request, arg);
        errno = r < 0 ? Libc.Errno : 0;
        return r;
    }
}
