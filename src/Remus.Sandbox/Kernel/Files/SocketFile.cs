using System.Buffers.Binary;
using Remus.Sandbox.Kernel.Readiness;

namespace Remus.Sandbox.Kernel.Files;

/// <summary>
/// An open socket (Linux's struct socket with its file): AF_UNIX (<see cref="UnixSocketFile"/>) or AF_INET
/// (<see cref="InetSocketFile"/>). Addresses come and go as the program's sockaddr bytes; results are counts or
/// negated errnos. Nothing here waits: a call that would wait returns -EAGAIN (an AF_INET connect -EINPROGRESS) and
/// the syscall layer (Kernel/Syscalls/Socket*.cs) waits on <see cref="FileDescription.Queue"/> unless the file is
/// O_NONBLOCK or the call says MSG_DONTWAIT.
/// </summary>
internal abstract class SocketFile : FileDescription
{
    public const int AF_UNIX = 1, AF_INET = 2, AF_INET6 = 10;
    public const int SOCK_STREAM = 1, SOCK_DGRAM = 2, SOCK_SEQPACKET = 5;
    public const int SOL_SOCKET = 1;
    public const int MSG_OOB = 1, MSG_PEEK = 2, MSG_TRUNC = 0x20, MSG_DONTWAIT = 0x40, MSG_EOR = 0x80,
        MSG_WAITALL = 0x100, MSG_NOSIGNAL = 0x4000, MSG_CMSG_CLOEXEC = 0x40000000;
    public const int SHUT_RD = 0, SHUT_WR = 1, SHUT_RDWR = 2;
    private const int O_RDWR = 2;

    protected SocketFile(int flags) => Flags = flags | O_RDWR;

    public abstract int Family { get; }

    /// <summary>SOCK_STREAM, SOCK_DGRAM or SOCK_SEQPACKET.</summary>
    public abstract int SocketType { get; }

    public abstract int Protocol { get; }

    /// <summary>Whether a blocking send goes on until all its bytes are in (a byte stream), rather than one message.</summary>
    public bool IsStream => SocketType == SOCK_STREAM;

    /// <summary>SO_RCVTIMEO / SO_SNDTIMEO in ns (0: wait without limit).</summary>
    public long ReceiveTimeoutNs { get; set; }
    public long SendTimeoutNs { get; set; }

    public abstract long Bind(ReadOnlySpan<byte> address);
    public abstract long Listen(int backlog);

    /// <summary>A connection from the accept queue (a new open file with <paramref name="flags"/>), or -EAGAIN.</summary>
    public abstract long Accept(int flags, out SocketFile? accepted);

    /// <summary>connect; AF_INET TCP returns -EINPROGRESS and completes later (see <see cref="TakeError"/>).</summary>
    public abstract long Connect(ReadOnlySpan<byte> address);

    /// <summary>Sends (<paramref name="to"/> empty: to the peer); -EPIPE when the syscall layer must raise SIGPIPE.</summary>
    public abstract long Send(ReadOnlySpan<byte> data, int flags, ReadOnlySpan<byte> to);

    /// <summary>
    /// Receives into <paramref name="buffer"/>; the sender's address into <paramref name="from"/> (its whole length in
    /// <paramref name="fromLength"/>, 0 when none), the message's whole length in <paramref name="fullLength"/>.
    /// </summary>
    public abstract long Receive(Span<byte> buffer, int flags, Span<byte> from, out int fromLength, out int fullLength);

    public abstract long Shutdown(int how);

    /// <summary>getsockname: writes the address (truncated to the span) and returns its whole length.</summary>
    public abstract int LocalName(Span<byte> address);

    /// <summary>getpeername: the whole length, or -ENOTCONN.</summary>
    public abstract long PeerName(Span<byte> address);

    public abstract long SetOption(int level, int name, ReadOnlySpan<byte> value);
    public abstract long GetOption(int level, int name, Span<byte> value);

    /// <summary>SO_ERROR: takes the pending error (a positive errno, 0 for none).</summary>
    public abstract int TakeError();

    public abstract bool IsListening { get; }

    /// <summary>FIONREAD / SIOCINQ.</summary>
    public abstract int ReadableBytes { get; }

    /// <summary>SIOCOUTQ.</summary>
    public abstract int UnsentBytes { get; }

    public override long Read(Span<byte> buffer, CancellationToken interrupt) => Receive(buffer, 0, default, out _, out _);

    public override long Write(ReadOnlySpan<byte> data) => Send(data, 0, default);

    /// <summary>An identity for fstat's st_ino (not checkpointed: Linux's socket inode numbers are arbitrary too).</summary>
    public ulong Inode { get; } = (ulong)Interlocked.Increment(ref s_inodes);
    private static long s_inodes = 5000;

    public override long Stat(Span<byte> st)
    {
        st.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(st[8..], Inode);   // st_ino
        BinaryPrimitives.WriteUInt64LittleEndian(st[16..], 1);      // st_nlink
        BinaryPrimitives.WriteUInt32LittleEndian(st[24..], 0xC1FF); // st_mode: S_IFSOCK | 0777
        BinaryPrimitives.WriteInt64LittleEndian(st[56..], 4096);    // st_blksize
        return 0;
    }

    /// <summary>Writes an int option value as getsockopt does (4 bytes, or fewer when the buffer is shorter).</summary>
    public static long PutInt(Span<byte> value, int v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, v);
        int n = Math.Min(4, value.Length);
        b[..n].CopyTo(value);
        return n;
    }

    /// <summary>Reads an int option value as setsockopt does (-EINVAL when shorter than an int).</summary>
    public static bool TryGetInt(ReadOnlySpan<byte> value, out int v)
    {
        v = value.Length >= 4 ? BinaryPrimitives.ReadInt32LittleEndian(value) : 0;
        return value.Length >= 4;
    }
}
