using System.Security.Cryptography;
using Remus.Sandbox.Net;
using Remus.Sandbox.Net.Sockets;
using Xunit;
using static Remus.Tests.Net.Stack.Frames;

namespace Remus.Tests.Net.Stack;

/// <summary>
/// The real TCP (net-tcp's TcpLayer) over this stack: through the loopback (whose queue is drained by the outermost
/// call, so TCP's send never re-enters its own receive), across a segment with ARP, and across a checkpoint.
/// </summary>
public sealed class TcpOverStackTests
{
    private const int EAGAIN = 11, EINPROGRESS = 115;
    private readonly ManualClock _clock = new();

    private NetStack Real(NetworkSpec? spec) => new(() => _clock.Now, spec);

    /// <summary>Pumps the wire, then runs timers when due (moving the clock to the next deadline when nothing else moves).</summary>
    private void Step(FakeSegment? wire, params NetStack[] stacks)
    {
        if (wire is not null && wire.Pump(max: 40) > 0) return; // a few frames at a time: transfers take many rounds
        long next = stacks.Min(s => s.NextDeadlineNs);
        if (next == long.MaxValue) return;
        if (next > _clock.Now) _clock.Now = next;
        foreach (var s in stacks) s.RunTimers();
    }

    private static IInetSocket Listen(NetStack s, string address, ushort port)
    {
        Assert.Equal(0, s.CreateSocket(1, 0, out var l));
        Assert.Equal(0, l!.Bind(new NetEndpoint(Ip(address), port)));
        Assert.Equal(0, l.Listen(16));
        return l;
    }

    private IInetSocket Accept(IInetSocket listener, FakeSegment? wire, params NetStack[] stacks)
    {
        for (int i = 0; i < 1000; i++)
        {
            if (listener.Accept(out var a) == 0) return a!;
            Step(wire, stacks);
        }
        throw new Xunit.Sdk.XunitException("no connection to accept");
    }

    /// <summary>Moves <paramref name="length"/> bytes from one socket to the other, then closes the writer's side; checks them.</summary>
    private void Transfer(IInetSocket from, IInetSocket to, int length, FakeSegment? wire, NetStack[] stacks, Action<int>? midway = null)
    {
        var data = new byte[length];
        new Random(length).NextBytes(data);
        var got = new MemoryStream();
        var buf = new byte[65536];
        int sent = 0;
        bool shut = false, midwayDone = false;
        for (int round = 0; round < 200_000; round++)
        {
            while (sent < length)
            {
                long n = from.Send(data.AsSpan(sent, Math.Min(65536, length - sent)), 0, null);
                if (n <= 0) { Assert.Equal(-EAGAIN, n); break; }
                sent += (int)n;
            }
            if (sent == length && !shut) { Assert.Equal(0, from.Shutdown(1)); shut = true; }
            while (true)
            {
                long n = to.Receive(buf, 0, out _, out _);
                if (n > 0) { got.Write(buf, 0, (int)n); continue; }
                if (n == 0)
                {
                    Assert.Equal(SHA256.HashData(data), SHA256.HashData(got.ToArray()));
                    return;
                }
                Assert.Equal(-EAGAIN, n);
                break;
            }
            if (!midwayDone && got.Length > length / 3 && midway is not null) { midwayDone = true; midway(round); }
            Step(wire, stacks);
        }
        throw new Xunit.Sdk.XunitException($"transfer stalled: {sent} sent, {got.Length} received");
    }

    [Fact]
    public void Tcp_over_the_loopback_of_one_stack()
    {
        var stack = Real(null);
        var listener = Listen(stack, "127.0.0.1", 8080);
        Assert.Equal(0, stack.CreateSocket(1, 0, out var client));
        long r = client!.Connect(new NetEndpoint(IPv4Address.Loopback, 8080));
        Assert.True(r is 0 or -EINPROGRESS, $"connect: {r}");
        var server = Accept(listener, null, stack);
        Assert.Equal(client.LocalEndpoint, server.RemoteEndpoint);
        Transfer(client, server, 300_000, null, [stack]);
        Transfer(server, client, 200_000, null, [stack]);
        Assert.Equal(0, stack.Stats.TotalDrops);
    }

    [Fact]
    public void Tcp_between_two_stacks_on_a_segment()
    {
        var wire = new FakeSegment();
        var a = Real(Spec("10.0.0.1", "02:52:4d:00:00:01"));
        var b = Real(Spec("10.0.0.2", "02:52:4d:00:00:02"));
        wire.Attach(a);
        wire.Attach(b);
        var listener = Listen(b, "0.0.0.0", 80);
        Assert.Equal(0, a.CreateSocket(1, 6, out var client));
        Assert.Equal(-EINPROGRESS, client!.Connect(new NetEndpoint(Ip("10.0.0.2"), 80)));
        var server = Accept(listener, wire, a, b);
        Transfer(client, server, 500_000, wire, [a, b]);
        Transfer(server, client, 100_000, wire, [a, b]);
        Assert.All(wire.Seen, f => Assert.True(f.Length <= 1514));
    }

    [Fact]
    public void A_tcp_transfer_goes_on_across_a_checkpoint_loaded_into_a_new_stack()
    {
        var wire = new FakeSegment();
        var a = Real(Spec("10.0.0.1", "02:52:4d:00:00:01"));
        var b = Real(Spec("10.0.0.2", "02:52:4d:00:00:02"));
        wire.Attach(a);
        wire.Attach(b);
        var listener = Listen(b, "0.0.0.0", 80);
        a.CreateSocket(1, 0, out var client);
        client!.Connect(new NetEndpoint(Ip("10.0.0.2"), 80));
        var server = Accept(listener, wire, a, b);
        var stacks = new[] { a, b };
        var receiver = server;
        // Midway, the receiving stack is checkpointed and replaced by a fresh one loaded from the image.
        Transfer(client, new Indirect(() => receiver), 400_000, wire, stacks, _ =>
        {
            using var ms = new MemoryStream();
            using (var w = new BinaryWriter(ms)) stacks[1].Save(w);
            var b2 = Real(Spec("10.0.0.2", "02:52:4d:00:00:02"));
            using (var r = new BinaryReader(new MemoryStream(ms.ToArray()))) b2.Load(r);
            wire.Replace(stacks[1], b2);
            receiver = b2.SocketById(server.Id)!;
            stacks[1] = b2;
        });
        Assert.NotSame(b, stacks[1]);
    }

    /// <summary>A socket whose target can be swapped under a running transfer.</summary>
    private sealed class Indirect(Func<IInetSocket> target) : IInetSocket
    {
        private IInetSocket T => target();
        public int Id => T.Id;
        public int Type => T.Type;
        public Remus.Sandbox.Kernel.Readiness.WaitQueue Queue => T.Queue;
        public Remus.Sandbox.Kernel.Readiness.PollEvents Readiness() => T.Readiness();
        public long Bind(NetEndpoint local) => T.Bind(local);
        public long Listen(int backlog) => T.Listen(backlog);
        public long Connect(NetEndpoint remote, bool disconnect = false) => T.Connect(remote, disconnect);
        public long Accept(out IInetSocket? accepted) => T.Accept(out accepted);
        public long Send(ReadOnlySpan<byte> data, int flags, NetEndpoint? to) => T.Send(data, flags, to);
        public long Receive(Span<byte> buffer, int flags, out NetEndpoint from, out int fullLength) => T.Receive(buffer, flags, out from, out fullLength);
        public long Shutdown(int how) => T.Shutdown(how);
        public void Close() => T.Close();
        public NetEndpoint LocalEndpoint => T.LocalEndpoint;
        public NetEndpoint? RemoteEndpoint => T.RemoteEndpoint;
        public long SetOption(int level, int name, ReadOnlySpan<byte> value) => T.SetOption(level, name, value);
        public long GetOption(int level, int name, Span<byte> value) => T.GetOption(level, name, value);
        public int TakeError() => T.TakeError();
        public int ReadableBytes => T.ReadableBytes;
        public int UnsentBytes => T.UnsentBytes;
    }
}
