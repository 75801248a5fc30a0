using System.Buffers.Binary;
using System.Security.Cryptography;
using Remus.Sandbox.Kernel.Readiness;
using Remus.Sandbox.Net;
using Remus.Sandbox.Net.Sockets;

namespace Remus.Tests.Net.Interop;

/// <summary>
/// A stack socket used the way the syscall layer uses it: each call under the harness's lock, and a call that says
/// -EAGAIN waits on the socket's queue and asks again (hang guard: <see cref="Guard"/>, never a timing).
/// </summary>
internal sealed class StackSocket(StackHarness h, IInetSocket socket)
{
    public const int EAGAIN = 11, EPIPE = 32, ECONNRESET = 104, ETIMEDOUT = 110, ECONNREFUSED = 111, EINPROGRESS = 115;
    public const int SOL_SOCKET = 1, SO_REUSEADDR = 2, SO_KEEPALIVE = 9, SO_RCVBUF = 8, SO_LINGER = 13;
    public const int IPPROTO_TCP = 6, TCP_NODELAY = 1, TCP_KEEPIDLE = 4, TCP_KEEPINTVL = 5, TCP_KEEPCNT = 6;

    /// <summary>How long a call may stay -EAGAIN before it counts as hung (the tests scale it in slow labs).</summary>
    public static TimeSpan Guard { get; set; } = TimeSpan.FromMinutes(3);

    public IInetSocket Inner => socket;

    public T Locked<T>(Func<IInetSocket, T> f)
    {
        lock (h.Lock) return f(socket);
    }

    /// <summary>Calls <paramref name="op"/> until it says something other than -EAGAIN, waiting on the queue for <paramref name="events"/> in between.</summary>
    public long Call(Func<IInetSocket, long> op, PollEvents events, TimeSpan? guard = null)
    {
        var deadline = DateTime.UtcNow + (guard ?? Guard);
        using var w = new Waiter();
        w.Listen(socket.Queue, events);
        while (true)
        {
            w.Arm();
            long r;
            lock (h.Lock) r = op(socket);
            if (r != -EAGAIN) return r;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"socket {socket.Id}: still -EAGAIN after {guard ?? Guard} (a hang guard)");
            w.Sleep(100_000_000, CancellationToken.None);
        }
    }

    /// <summary>Waits until the socket's readiness has any of <paramref name="events"/>; returns it.</summary>
    public PollEvents WaitFor(PollEvents events, TimeSpan? guard = null)
    {
        PollEvents seen = PollEvents.None;
        Call(s => ((seen = s.Readiness()) & events) != 0 ? 0 : -EAGAIN, events, guard);
        return seen;
    }

    public void Bind(ushort port) => Check(Locked(s => s.Bind(new NetEndpoint(IPv4Address.Any, port))), "bind");

    public void Listen(int backlog = 128) => Check(Locked(s => s.Listen(backlog)), "listen");

    /// <summary>Blocking connect: 0, or the negated error (ECONNREFUSED, ETIMEDOUT).</summary>
    public long Connect(string ip, ushort port)
    {
        IPv4Address.TryParse(ip, out var a);
        long r = Locked(s => s.Connect(new NetEndpoint(a, port)));
        if (r != -EINPROGRESS) return r;
        WaitFor(PollEvents.Out | PollEvents.Err | PollEvents.Hup);
        return -Locked(s => (long)s.TakeError());
    }

    public StackSocket Accept(TimeSpan? guard = null)
    {
        IInetSocket? a = null;
        Check(Call(s => s.Accept(out a), PollEvents.In, guard), "accept");
        return new StackSocket(h, a!);
    }

    /// <summary>Sends <paramref name="length"/> bytes of the generated stream of <paramref name="seed"/>; returns the count sent, or the negated error.</summary>
    public long SendGenerated(ulong seed, long length)
    {
        var g = new GeneratedStream(seed);
        var buf = new byte[1 << 16];
        long sent = 0;
        while (sent < length)
        {
            int n = (int)Math.Min(buf.Length, length - sent);
            g.Fill(buf.AsSpan(0, n));
            int off = 0;
            while (off < n)
            {
                int o = off;
                long r = Call(s => s.Send(buf.AsSpan(o, n - o), 0, null), PollEvents.Out);
                if (r < 0) return r;
                off += (int)r;
            }
            sent += n;
        }
        return sent;
    }

    public void SendAll(ReadOnlySpan<byte> data)
    {
        var copy = data.ToArray();
        for (int off = 0; off < copy.Length;)
        {
            int o = off;
            long r = Call(s => s.Send(copy.AsSpan(o), 0, null), PollEvents.Out);
            Check(r, "send");
            off += (int)r;
        }
    }

    /// <summary>Reads to end of stream (or <paramref name="max"/> bytes): count and SHA-256; the negated error if the read failed.</summary>
    public (long Count, string Sha256, long Error) ReceiveAll(long max = long.MaxValue)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buf = new byte[1 << 16];
        long count = 0, error = 0;
        while (count < max)
        {
            int want = (int)Math.Min(buf.Length, max - count);
            long r = Call(s => s.Receive(buf.AsSpan(0, want), 0, out _, out _), PollEvents.In | PollEvents.RdHup);
            if (r < 0)
            {
                error = r;
                break;
            }
            if (r == 0) break;
            hash.AppendData(buf, 0, (int)r);
            count += r;
        }
        return (count, Convert.ToHexStringLower(hash.GetHashAndReset()), error);
    }

    /// <summary>One blocking receive of at most <paramref name="max"/> bytes: the count (0 at end of stream) or the negated error.</summary>
    public long ReceiveOnce(Span<byte> into)
    {
        var buf = new byte[into.Length];
        long r = Call(s => s.Receive(buf, 0, out _, out _), PollEvents.In | PollEvents.RdHup);
        if (r > 0) buf.AsSpan(0, (int)r).CopyTo(into);
        return r;
    }

    public long Shutdown(int how) => Locked(s => s.Shutdown(how));

    public void Close() => Locked(s =>
    {
        s.Close();
        return 0;
    });

    public void SetInt(int level, int name, int value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, value);
        Check(Locked(s => s.SetOption(level, name, b)), $"setsockopt({level}, {name})");
    }

    public void SetLinger(bool on, int seconds)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteInt32LittleEndian(b, on ? 1 : 0);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(4), seconds);
        Check(Locked(s => s.SetOption(SOL_SOCKET, SO_LINGER, b)), "SO_LINGER");
    }

    public NetEndpoint Local => Locked(s => s.LocalEndpoint);

    public static long Check(long r, string what) =>
        r < 0 ? throw new InvalidOperationException($"{what}: -{Errno(-r)}") : r;

    public static string Errno(long e) => e switch
    {
        EAGAIN => "EAGAIN",
        EPIPE => "EPIPE",
        ECONNRESET => "ECONNRESET",
        ETIMEDOUT => "ETIMEDOUT",
        ECONNREFUSED => "ECONNREFUSED",
        EINPROGRESS => "EINPROGRESS",
        _ => $"errno {e}",
    };
}
