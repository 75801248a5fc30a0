namespace Remus.Sandbox.Platform.Net;

/// <summary>
/// A Linux tap device (/dev/net/tun, IFF_TAP | IFF_NO_PI): whole Ethernet frames in and out. The device is not
/// persistent: it exists while this object holds its descriptor, and the kernel deletes it when
/// <see cref="Dispose"/> closes it (or the process dies). Reads wait in poll(2) on the tap and on an eventfd, so
/// <see cref="Interrupt"/> (or a cancellation) ends a waiting read. One reader and any number of writers at a time;
/// the reader is stopped before the device is disposed.
/// </summary>
public sealed unsafe class TapDevice : IDisposable
{
    /// <summary>The largest name the kernel takes (IFNAMSIZ 16, with its terminating NUL).</summary>
    public const int MaxNameLength = 15;

    private const ulong TUNSETIFF = 0x400454CA;
    private const short IFF_TAP = 0x0002, IFF_NO_PI = 0x1000;
    private const ushort IFF_TUN_EXCL = 0x8000;

    private int _fd;
    private readonly int _wake;
    private int _interrupted;

    private TapDevice(string name, string? netns, int fd, int wake)
    {
        Name = name;
        Netns = netns;
        _fd = fd;
        _wake = wake;
    }

    public string Name { get; }

    /// <summary>The network namespace the device lives in; null: the process's own.</summary>
    public string? Netns { get; }

    /// <summary>Frames a write could not hand to the kernel (interface down, no buffers): dropped, as a wire would.</summary>
    public long WriteDrops { get; private set; }

    /// <summary>
    /// Whether <paramref name="name"/> can name a network interface: 1 to 15 characters, none of them '/', ':', a
    /// space or a control character, and not "." or "..".
    /// </summary>
    public static bool IsValidName(string name) =>
        name.Length is > 0 and <= MaxNameLength && name is not "." and not ".." &&
        name.All(c => c > ' ' && c < 0x7F && c != '/' && c != ':');

    /// <summary>
    /// Creates tap <paramref name="name"/> in namespace <paramref name="netns"/> (null: ours). Errors are one
    /// <see cref="SandboxException"/> line: "tap device X is in use" when any interface already has the name,
    /// "creating tap X needs CAP_NET_ADMIN" without the privilege; nothing is left behind on failure.
    /// </summary>
    public static TapDevice Create(string name, string? netns = null)
    {
        if (!IsValidName(name))
            throw new SandboxException($"bad tap device name '{name}': 1 to {MaxNameLength} characters, no '/', ':' or spaces");
        int fd = NetNamespace.Run(netns, () => Open(name));
        int wake = Libc.eventfd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (wake < 0)
        {
            int errno = Libc.Errno;
            Libc.close(fd);
            throw new SandboxException($"tap {name}: eventfd: {Libc.ErrnoText(errno)}");
        }
        return new TapDevice(name, netns, fd, wake);
    }

    /// <summary>
    /// <see cref="Create"/>, retried while the name is still in use until <paramref name="patience"/> has passed: a
    /// VMM taking a domain over on the same host waits for the old VMM's device to go with its process.
    /// </summary>
    public static TapDevice CreateRetrying(string name, string? netns, TimeSpan patience)
    {
        var deadline = DateTime.UtcNow + patience;
        while (true)
        {
            try
            {
                return Create(name, netns);
            }
            catch (TapInUseException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(50);
            }
        }
    }

    private static int Open(string name)
    {
        int fd = Libc.open("/dev/net/tun", Libc.O_RDWR | Libc.O_NONBLOCK | Libc.O_CLOEXEC);
        if (fd < 0)
        {
            int errno = Libc.Errno;
            throw errno switch
            {
                Libc.ENOENT or Libc.ENODEV => new SandboxException($"creating tap {name}: this host has no /dev/net/tun (modprobe tun)"),
                Libc.EPERM or Libc.EACCES => new SandboxException($"creating tap {name} needs CAP_NET_ADMIN (cannot open /dev/net/tun)"),
                _ => new SandboxException($"creating tap {name}: /dev/net/tun: {Libc.ErrnoText(errno)}"),
            };
        }
        // struct ifreq: ifr_name[16], then the union (ifr_flags is its first short); 40 bytes.
        byte* ifr = stackalloc byte[40];
        new Span<byte>(ifr, 40).Clear();
        System.Text.Encoding.ASCII.GetBytes(name, new Span<byte>(ifr, 15));
        // IFF_TUN_EXCL: fail (EBUSY) if any interface already has this name instead of attaching to it.
        *(ushort*)(ifr + 16) = (ushort)(IFF_TAP | IFF_NO_PI) | IFF_TUN_EXCL;
        if (Libc.ioctl(fd, TUNSETIFF, ifr) != 0)
        {
            int errno = Libc.Errno;
            Libc.close(fd);
            throw errno switch
            {
                Libc.EBUSY or Libc.EEXIST or Libc.EINVAL => new TapInUseException(name),
                Libc.EPERM or Libc.EACCES => new SandboxException($"creating tap {name} needs CAP_NET_ADMIN"),
                _ => new SandboxException($"creating tap {name}: TUNSETIFF: {Libc.ErrnoText(errno)}"),
            };
        }
        return fd;
    }

    /// <summary>
    /// Reads one frame into <paramref name="buffer"/> (a frame longer than it is cut), waiting for one up to
    /// <paramref name="timeoutMs"/> (-1: no limit). Returns its length, or 0 on timeout, cancellation, after
    /// <see cref="Interrupt"/>, or when the device is closed.
    /// </summary>
    public int ReadFrame(Span<byte> buffer, int timeoutMs = -1, CancellationToken cancel = default)
    {
        using var registration = cancel.CanBeCanceled ? cancel.Register(WakeReader) : default;
        long deadline = timeoutMs < 0 ? long.MaxValue : Environment.TickCount64 + timeoutMs;
        var fds = stackalloc Libc.PollFd[2];
        fixed (byte* buf = buffer)
        {
            while (true)
            {
                int fd = Volatile.Read(ref _fd);
                if (fd < 0 || Volatile.Read(ref _interrupted) != 0 || cancel.IsCancellationRequested) return 0;
                nint n = Libc.read(fd, buf, (nuint)buffer.Length);
                if (n > 0) return (int)n;
                int errno = Libc.Errno;
                if (n < 0 && errno != Libc.EAGAIN && errno != Libc.EINTR) return 0; // EBADFD: closed under us
                int wait = deadline == long.MaxValue ? -1 : (int)Math.Max(0, deadline - Environment.TickCount64);
                if (wait == 0 && deadline != long.MaxValue) return 0;
                fds[0] = new Libc.PollFd { Fd = fd, Events = Libc.POLLIN };
                fds[1] = new Libc.PollFd { Fd = _wake, Events = Libc.POLLIN };
                int r = Libc.poll(fds, 2, wait);
                if (r < 0 && Libc.Errno != Libc.EINTR) return 0;
                if (r > 0 && fds[1].Revents != 0)
                {
                    ulong drain;
                    Libc.read(_wake, (byte*)&drain, 8);
                }
                if (r > 0 && (fds[0].Revents & (Libc.POLLERR | Libc.POLLHUP | Libc.POLLNVAL)) != 0) return 0;
            }
        }
    }

    /// <summary>
    /// Hands one frame to the kernel (it appears on the host side of the tap). False when it was dropped (the
    /// interface is down, the kernel had no buffer, or the device is closed); drops are counted in <see cref="WriteDrops"/>.
    /// </summary>
    public bool WriteFrame(ReadOnlySpan<byte> frame)
    {
        int fd = Volatile.Read(ref _fd);
        if (fd < 0) return false;
        fixed (byte* p = frame)
        {
            while (true)
            {
                int n = Libc.write(fd, p, (nuint)frame.Length);
                if (n == frame.Length) return true;
                if (n < 0 && Libc.Errno == Libc.EINTR) continue;
                WriteDrops++;
                return false;
            }
        }
    }

    /// <summary>Ends a waiting <see cref="ReadFrame"/>, and every later one returns 0 at once.</summary>
    public void Interrupt()
    {
        Volatile.Write(ref _interrupted, 1);
        WakeReader();
    }

    private void WakeReader()
    {
        if (Volatile.Read(ref _fd) < 0) return;
        ulong one = 1;
        Libc.write(_wake, (byte*)&one, 8);
    }

    /// <summary>
    /// Closes the device: the kernel deletes the interface (with its addresses and bridge port). Stop the reader first
    /// (<see cref="Interrupt"/>, then wait for its <see cref="ReadFrame"/> to return): a descriptor closed under a
    /// waiting poll could be reused by the next open.
    /// </summary>
    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd < 0) return;
        Volatile.Write(ref _interrupted, 1);
        Libc.close(fd);
        Libc.close(_wake);
    }

    public override string ToString() => Netns is null ? Name : $"{Name} (netns {Netns})";
}

/// <summary>The tap name is taken by another interface (another VMM's tap, or any other device).</summary>
public sealed class TapInUseException(string name) : SandboxException($"tap device {name} is in use");
