using System.Buffers.Binary;
using Remus.Sandbox.Kernel.Readiness;

namespace Remus.Sandbox.Kernel.Files;

/// <summary>An open AF_UNIX socket: the file over a <see cref="UnixSocket"/>; sockaddr_un in and out.</summary>
internal sealed class UnixSocketFile(UnixSocket socket, int flags, (int Pid, int Uid, int Gid) cred) : SocketFile(flags)
{
    public const int SunPathOffset = 2, MaxAddress = 110;
    private const int SO_REUSEADDR = 2, SO_TYPE = 3, SO_BROADCAST = 6, SO_SNDBUF = 7, SO_RCVBUF = 8, SO_KEEPALIVE = 9,
        SO_PASSCRED = 16, SO_PEERCRED = 17, SO_SNDBUFFORCE = 32, SO_RCVBUFFORCE = 33;

    public UnixSocket Socket { get; } = socket;
    public (int Pid, int Uid, int Gid) Cred { get; } = cred;

    public override int Family => AF_UNIX;
    public override int SocketType => Socket.Type;
    public override int Protocol => 0;
    public override bool IsListening => Socket.State == UnixSocket.SocketState.Listening;
    public override WaitQueue Queue => Socket.Queue;
    public override PollEvents Readiness() => Socket.Readiness();

    /// <summary>The sun_path bytes of a sockaddr_un (family checked), or a negated errno.</summary>
    private static long ParseName(ReadOnlySpan<byte> address, out byte[] name)
    {
        name = [];
        if (address.Length < SunPathOffset || address.Length > MaxAddress) return -Errno.EINVAL;
        if (BinaryPrimitives.ReadUInt16LittleEndian(address) != AF_UNIX) return -Errno.EINVAL;
        var path = address[SunPathOffset..];
        if (path.Length == 0) return 0;
        if (path[0] != 0)
        {
            // unix_mkname_bsd: the path up to its NUL, which the bound name keeps.
            int nul = path.IndexOf((byte)0);
            name = [.. nul >= 0 ? path[..nul] : path, 0];
        }
        else name = path.ToArray();
        return 0;
    }

    public override long Bind(ReadOnlySpan<byte> address)
    {
        long r = ParseName(address, out var name);
        if (r < 0) return r;
        return name.Length == 0 ? Socket.Names.AutoBind(Socket) : Socket.Names.Bind(Socket, name);
    }

    public override long Listen(int backlog) => Socket.Listen(backlog);

    public override long Accept(int flags, out SocketFile? accepted)
    {
        accepted = null;
        long r = Socket.Accept(out var s);
        if (r < 0) return r;
        accepted = new UnixSocketFile(s!, flags, Cred);
        return 0;
    }

    public override long Connect(ReadOnlySpan<byte> address)
    {
        if (address.Length >= SunPathOffset && BinaryPrimitives.ReadUInt16LittleEndian(address) == 0 /* AF_UNSPEC */)
            return Socket.Disconnect();
        long r = ParseName(address, out var name);
        if (r < 0) return r;
        if (name.Length == 0) return -Errno.EINVAL;
        r = Socket.Names.Lookup(name, Socket.Type, out var target);
        return r < 0 ? r : Socket.Connect(target!, Cred);
    }

    public override long Send(ReadOnlySpan<byte> data, int flags, ReadOnlySpan<byte> to)
    {
        if ((flags & MSG_OOB) != 0) return -Errno.EOPNOTSUPP;
        if (Socket.Type == SOCK_STREAM)
        {
            if (!to.IsEmpty) return Socket.State == UnixSocket.SocketState.Connected ? -Errno.EISCONN : -Errno.EOPNOTSUPP;
            return Socket.SendStream(data);
        }
        UnixSocket? target = null;
        if (!to.IsEmpty && Socket.Type == SOCK_DGRAM)
        {
            long r = ParseName(to, out var name);
            if (r < 0) return r;
            if (name.Length == 0) return -Errno.EINVAL;
            r = Socket.Names.Lookup(name, Socket.Type, out target);
            if (r < 0) return r;
        }
        return Socket.SendMessage(data, target);
    }

    public override long Receive(Span<byte> buffer, int flags, Span<byte> from, out int fromLength, out int fullLength)
    {
        fromLength = 0;
        fullLength = 0;
        if ((flags & MSG_OOB) != 0) return -Errno.EOPNOTSUPP;
        bool peek = (flags & MSG_PEEK) != 0;
        if (Socket.Type == SOCK_STREAM)
        {
            long n = Socket.ReceiveStream(buffer, peek);
            fullLength = (int)Math.Max(n, 0);
            return n;
        }
        long r = Socket.ReceiveMessage(buffer, peek, out fullLength, out var sender);
        if (r >= 0 && sender != null) fromLength = WriteAddress(from, sender); // unix_copy_addr: nothing for an unnamed sender
        return r;
    }

    /// <summary>Writes a sockaddr_un for <paramref name="name"/> (family only when unnamed); returns its whole length.</summary>
    public static int WriteAddress(Span<byte> address, byte[]? name)
    {
        Span<byte> full = stackalloc byte[SunPathOffset + (name?.Length ?? 0)];
        BinaryPrimitives.WriteUInt16LittleEndian(full, AF_UNIX);
        name?.CopyTo(full[SunPathOffset..]);
        int n = Math.Min(full.Length, address.Length);
        full[..n].CopyTo(address);
        return full.Length;
    }

    public override long Shutdown(int how) => Socket.Shutdown(how);

    public override int LocalName(Span<byte> address) => WriteAddress(address, Socket.Name);

    public override long PeerName(Span<byte> address)
    {
        if (Socket.Peer is not { } p || (Socket.ConnectionBased && Socket.State != UnixSocket.SocketState.Connected)) return -Errno.ENOTCONN;
        return WriteAddress(address, p.Name);
    }

    public override long SetOption(int level, int name, ReadOnlySpan<byte> value)
    {
        if (level != SOL_SOCKET) return -Errno.EOPNOTSUPP;
        if (!TryGetInt(value, out int v)) return -Errno.EINVAL;
        switch (name)
        {
            case SO_SNDBUF or SO_SNDBUFFORCE:
                // sock_setsockopt: doubled (for bookkeeping overhead), capped by wmem_max, at least SOCK_MIN_SNDBUF.
                Socket.SendBuffer = Math.Max(Math.Min(v < 0 ? int.MaxValue / 2 : v, UnixSocket.DefaultBuffer) * 2, UnixSocket.MinSendBuffer);
                Socket.Queue.Notify(PollEvents.Writable);
                return 0;
            case SO_RCVBUF or SO_RCVBUFFORCE:
                Socket.ReceiveBuffer = Math.Max(Math.Min(v < 0 ? int.MaxValue / 2 : v, UnixSocket.DefaultBuffer) * 2, UnixSocket.MinReceiveBuffer);
                return 0;
            case SO_REUSEADDR or SO_KEEPALIVE or SO_BROADCAST or SO_PASSCRED:
                Socket.Options[name] = v != 0 ? 1 : 0;
                return 0;
            default:
                Socket.Options[name] = v;
                return 0;
        }
    }

    public override long GetOption(int level, int name, Span<byte> value)
    {
        if (level != SOL_SOCKET) return -Errno.EOPNOTSUPP;
        switch (name)
        {
            case SO_SNDBUF: return PutInt(value, Socket.SendBuffer);
            case SO_RCVBUF: return PutInt(value, Socket.ReceiveBuffer);
            case SO_PEERCRED:
            {
                Span<byte> c = stackalloc byte[12];
                var (pid, uid, gid) = Socket.PeerCred ?? (0, -1, -1);
                BinaryPrimitives.WriteInt32LittleEndian(c, pid);
                BinaryPrimitives.WriteInt32LittleEndian(c[4..], uid);
                BinaryPrimitives.WriteInt32LittleEndian(c[8..], gid);
                int n = Math.Min(12, value.Length);
                c[..n].CopyTo(value);
                return n;
            }
            case SO_REUSEADDR or SO_KEEPALIVE or SO_BROADCAST or SO_PASSCRED:
                return PutInt(value, Socket.Options.GetValueOrDefault(name));
            default:
                return Socket.Options.TryGetValue(name, out int v) ? PutInt(value, v) : -Errno.ENOPROTOOPT;
        }
    }

    public override int TakeError()
    {
        int e = Socket.Error;
        Socket.Error = 0;
        return e;
    }

    public override int ReadableBytes => Socket.Type != SOCK_DGRAM
        ? Socket.ReceivedBytes
        : Socket.Received.First?.Value.Length ?? 0;

    public override int UnsentBytes => Socket.InFlight;

    private bool _released;

    public override void Release()
    {
        if (_released) return;
        _released = true;
        Socket.Close();
    }
}
