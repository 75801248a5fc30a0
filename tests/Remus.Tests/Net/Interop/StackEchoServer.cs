using Remus.Sandbox.Kernel.Readiness;
using Remus.Sandbox.Net;
using Remus.Sandbox.Net.Sockets;

namespace Remus.Tests.Net.Interop;

/// <summary>
/// A server on the stack, on a thread of its own: accepts every connection of a listening socket and echoes what it
/// reads until the peer's end of stream, then shuts down its side and closes (or, with <see cref="CloseAtOnce"/>,
/// closes each connection as soon as it is accepted, so this side keeps the TIME_WAIT). One event loop over all
/// connections, as an epoll server would run.
/// </summary>
internal sealed class StackEchoServer : IDisposable
{
    private sealed class Conn(IInetSocket s)
    {
        public IInetSocket S { get; } = s;
        public byte[] Pending { get; } = new byte[1 << 16];
        public int PendingStart, PendingEnd;
        public bool PeerDone;
    }

    private readonly StackHarness h;
    private readonly IInetSocket listener;
    private readonly List<Conn> conns = [];
    private readonly Thread thread;
    private readonly CancellationTokenSource stop = new();
    private Exception? failure;

    public StackEchoServer(StackHarness h, ushort port, int backlog = 256, bool closeAtOnce = false)
    {
        this.h = h;
        CloseAtOnce = closeAtOnce;
        var l = h.Socket();
        l.Bind(port);
        l.Listen(backlog);
        listener = l.Inner;
        thread = new Thread(Loop) { IsBackground = true, Name = $"stack echo :{port}" };
        thread.Start();
    }

    public bool CloseAtOnce { get; }

    /// <summary>Connections accepted so far, and those finished (echoed to end and closed).</summary>
    public int Accepted => Volatile.Read(ref accepted);
    public int Finished => Volatile.Read(ref finished);
    public long BytesEchoed => Interlocked.Read(ref bytes);
    private int accepted, finished;
    private long bytes;

    private void Loop()
    {
        try
        {
            while (!stop.IsCancellationRequested)
            {
                using var w = new Waiter();
                w.Listen(listener.Queue, PollEvents.In);
                lock (h.Lock)
                {
                    foreach (var c in conns) w.Listen(c.S.Queue, PollEvents.In | PollEvents.Out | PollEvents.RdHup);
                }
                w.Arm();
                bool progress = Step();
                if (!progress) w.Sleep(50_000_000, stop.Token);
            }
        }
        catch (Exception e)
        {
            failure = e;
        }
    }

    private bool Step()
    {
        bool progress = false;
        lock (h.Lock)
        {
            while (listener.Accept(out var a) == 0 && a is not null)
            {
                progress = true;
                Interlocked.Increment(ref accepted);
                if (CloseAtOnce)
                {
                    a.Close();
                    Interlocked.Increment(ref finished);
                }
                else conns.Add(new Conn(a));
            }
            for (int i = conns.Count - 1; i >= 0; i--)
            {
                var c = conns[i];
                progress |= Serve(c);
                if (c.PeerDone && c.PendingStart == c.PendingEnd)
                {
                    c.S.Shutdown(1);
                    c.S.Close();
                    conns.RemoveAt(i);
                    Interlocked.Increment(ref finished);
                    progress = true;
                }
            }
        }
        return progress;
    }

    private bool Serve(Conn c)
    {
        bool progress = false;
        while (true)
        {
            if (c.PendingStart < c.PendingEnd)
            {
                long w = c.S.Send(c.Pending.AsSpan(c.PendingStart, c.PendingEnd - c.PendingStart), 0, null);
                if (w < 0 && w != -StackSocket.EAGAIN)
                {
                    c.PeerDone = true; // reset: give up on this one
                    c.PendingStart = c.PendingEnd = 0;
                    return true;
                }
                if (w <= 0) return progress;
                c.PendingStart += (int)w;
                Interlocked.Add(ref bytes, w);
                progress = true;
                if (c.PendingStart < c.PendingEnd) return progress;
            }
            if (c.PeerDone) return progress;
            c.PendingStart = c.PendingEnd = 0;
            long r = c.S.Receive(c.Pending, 0, out _, out _);
            if (r == -StackSocket.EAGAIN) return progress;
            progress = true;
            if (r <= 0)
            {
                c.PeerDone = true;
                return progress;
            }
            c.PendingEnd = (int)r;
        }
    }

    public void ThrowIfFailed()
    {
        if (failure is { } e) throw new InvalidOperationException($"stack echo server failed: {e.Message}", e);
    }

    public void Dispose()
    {
        stop.Cancel();
        thread.Join(TimeSpan.FromSeconds(10));
        lock (h.Lock)
        {
            foreach (var c in conns) c.S.Close();
            listener.Close();
        }
        stop.Dispose();
    }
}
