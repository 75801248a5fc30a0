using Remus.Sandbox.Net;

namespace Remus.Sandbox.Platform.Net;

/// <summary>
/// Configures network interfaces with the classic ioctls on an AF_INET datagram socket. The socket is made inside
/// the namespace given to <see cref="Open"/>, so every ioctl acts on that namespace's interfaces from any thread.
/// Errors are one <see cref="SandboxException"/> line naming the interface.
/// </summary>
public sealed unsafe class InterfaceControl : IDisposable
{
    private const ulong SIOCGIFFLAGS = 0x8913, SIOCSIFFLAGS = 0x8914, SIOCSIFADDR = 0x8916, SIOCSIFNETMASK = 0x891C,
        SIOCGIFINDEX = 0x8933, SIOCBRADDIF = 0x89A2;
    private const short IFF_UP = 0x1;
    private const int IfReqSize = 40, NameOffset = 0, UnionOffset = 16;

    private int _fd;

    private InterfaceControl(string? netns, int fd)
    {
        Netns = netns;
        _fd = fd;
    }

    /// <summary>The namespace whose interfaces this controls; null: ours.</summary>
    public string? Netns { get; }

    public static InterfaceControl Open(string? netns)
    {
        int fd = NetNamespace.Run(netns, () => Libc.socket(Libc.AF_INET, Libc.SOCK_DGRAM | Libc.SOCK_CLOEXEC, 0));
        if (fd < 0) throw new SandboxException($"interface control socket: {Libc.ErrnoText(Libc.Errno)}");
        return new InterfaceControl(netns, fd);
    }

    /// <summary>The interface's index (SIOCGIFINDEX); null when there is no such interface.</summary>
    public int? IndexOf(string name)
    {
        byte* ifr = stackalloc byte[IfReqSize];
        Prepare(ifr, name);
        if (Libc.ioctl(_fd, SIOCGIFINDEX, ifr) != 0)
        {
            int errno = Libc.Errno;
            if (errno == Libc.ENODEV) return null;
            throw Failure(name, "index", errno);
        }
        return *(int*)(ifr + UnionOffset);
    }

    public bool Exists(string name) => IndexOf(name) is not null;

    /// <summary>Gives the interface an IPv4 address and netmask (SIOCSIFADDR, SIOCSIFNETMASK).</summary>
    public void SetAddress(string name, IPv4Address address, int prefixLength)
    {
        if (prefixLength is < 0 or > 32) throw new ArgumentOutOfRangeException(nameof(prefixLength));
        byte* ifr = stackalloc byte[IfReqSize];
        PrepareSockaddr(ifr, name, address);
        if (Libc.ioctl(_fd, SIOCSIFADDR, ifr) != 0) throw Failure(name, $"set address {address}", Libc.Errno);
        uint mask = prefixLength == 0 ? 0 : uint.MaxValue << (32 - prefixLength);
        PrepareSockaddr(ifr, name, new IPv4Address(mask));
        if (Libc.ioctl(_fd, SIOCSIFNETMASK, ifr) != 0) throw Failure(name, $"set netmask /{prefixLength}", Libc.Errno);
    }

    /// <summary>Brings the interface up (IFF_UP, keeping its other flags).</summary>
    public void SetUp(string name)
    {
        byte* ifr = stackalloc byte[IfReqSize];
        Prepare(ifr, name);
        if (Libc.ioctl(_fd, SIOCGIFFLAGS, ifr) != 0) throw Failure(name, "get flags", Libc.Errno);
        *(short*)(ifr + UnionOffset) |= IFF_UP;
        if (Libc.ioctl(_fd, SIOCSIFFLAGS, ifr) != 0) throw Failure(name, "bring up", Libc.Errno);
    }

    /// <summary>Makes <paramref name="name"/> a port of the existing bridge <paramref name="bridge"/> (SIOCBRADDIF).</summary>
    public void AttachToBridge(string bridge, string name)
    {
        int index = IndexOf(name) ?? throw new SandboxException($"interface {name} does not exist{Where}");
        byte* ifr = stackalloc byte[IfReqSize];
        Prepare(ifr, bridge);
        *(int*)(ifr + UnionOffset) = index;
        if (Libc.ioctl(_fd, SIOCBRADDIF, ifr) != 0)
        {
            int errno = Libc.Errno;
            throw errno switch
            {
                Libc.ENODEV => new SandboxException($"bridge {bridge} does not exist{Where}"),
                Libc.EOPNOTSUPP or Libc.EINVAL => new SandboxException($"{bridge} is not a bridge{Where}"),
                _ => Failure(name, $"attach to bridge {bridge}", errno),
            };
        }
    }

    private string Where => Netns is null ? "" : $" in network namespace {Netns}";

    private SandboxException Failure(string name, string what, int errno) => errno switch
    {
        Libc.ENODEV => new SandboxException($"interface {name} does not exist{Where}"),
        Libc.EPERM or Libc.EACCES => new SandboxException($"interface {name}: {what} needs CAP_NET_ADMIN"),
        _ => new SandboxException($"interface {name}{Where}: {what}: {Libc.ErrnoText(errno)}"),
    };

    private static void Prepare(byte* ifr, string name)
    {
        if (!TapDevice.IsValidName(name)) throw new SandboxException($"bad interface name '{name}'");
        new Span<byte>(ifr, IfReqSize).Clear();
        System.Text.Encoding.ASCII.GetBytes(name, new Span<byte>(ifr + NameOffset, 15));
    }

    private static void PrepareSockaddr(byte* ifr, string name, IPv4Address address)
    {
        Prepare(ifr, name);
        // struct sockaddr_in: sin_family (host order), sin_port, sin_addr (network order), zero padding.
        *(ushort*)(ifr + UnionOffset) = Libc.AF_INET;
        address.Write(new Span<byte>(ifr + UnionOffset + 4, 4));
    }

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) Libc.close(fd);
    }
}
