using System.Net.Sockets;
using Remus.Tests.Support;
using Remus.Toolstack.Security;
using Xunit;

namespace Remus.Tests.Toolstack.Security;

/// <summary>Both protected modes carry bytes exactly, both ways at once (one reader and one writer per end).</summary>
public sealed class ChannelRoundTripTests : IDisposable
{
    private readonly TestPki _pki = new();

    public void Dispose() => _pki.Dispose();

    public static TheoryData<ChannelMode> Modes => new() { ChannelMode.Tls, ChannelMode.Psk };

    private (ChannelSecurity Connecting, ChannelSecurity Accepting) Security(ChannelMode mode) => mode == ChannelMode.Tls
        ? (_pki.Tls(_pki.HostA), _pki.Tls(_pki.HostB))
        : (_pki.Psk(), _pki.Psk());

    [Fact]
    public void Insecure_returns_the_transport_itself()
    {
        (NetworkStream c, NetworkStream a) = ChannelLoopback.Pair();
        using (c) using (a)
        {
            Assert.Same(c, SecureChannel.Connect(c, ChannelSecurity.Insecure, "peer", TimeSpan.FromSeconds(1)));
            Assert.Same(a, SecureChannel.Accept(a, ChannelSecurity.Insecure, "peer", TimeSpan.FromSeconds(1)));
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Megabytes_cross_both_ways_at_once_byte_for_byte(ChannelMode mode)
    {
        (ChannelSecurity cs, ChannelSecurity asec) = Security(mode);
        (ChannelLoopback.Outcome c, ChannelLoopback.Outcome a) = ChannelLoopback.Handshake(cs, asec);
        using Stream connecting = c.Ok, accepting = a.Ok;
        const int Bytes = 6 * 1024 * 1024;
        byte[] forward = Random.Shared.GetItems<byte>(Enumerable.Range(0, 256).Select(i => (byte)i).ToArray(), Bytes);
        byte[] back = Random.Shared.GetItems<byte>(Enumerable.Range(0, 256).Select(i => (byte)i).ToArray(), Bytes);

        Task[] all =
        [
            Start(() => Send(connecting, forward, seed: 1)),
            Start(() => Assert.Equal(forward, Receive(accepting, Bytes, seed: 2))),
            Start(() => Send(accepting, back, seed: 3)),
            Start(() => Assert.Equal(back, Receive(connecting, Bytes, seed: 4))),
        ];
        Assert.True(Task.WaitAll(all, ChannelLoopback.Patience), "the transfer hung");
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void A_small_write_reaches_the_peer_on_flush(ChannelMode mode)
    {
        (ChannelSecurity cs, ChannelSecurity asec) = Security(mode);
        (ChannelLoopback.Outcome c, ChannelLoopback.Outcome a) = ChannelLoopback.Handshake(cs, asec);
        using Stream connecting = c.Ok, accepting = a.Ok;
        for (byte i = 0; i < 20; i++)
        {
            connecting.WriteByte(i);
            connecting.Flush();
            Assert.Equal(i, accepting.ReadByte());
            accepting.Write([i, i]);
            accepting.Flush();
            byte[] got = new byte[2];
            Assert.Equal(2, ChannelLoopback.ReadFully(connecting, got));
            Assert.Equal(new[] { i, i }, got);
        }
        connecting.Dispose();
        Assert.Equal(-1, accepting.ReadByte()); // the peer's close reads as the end of the stream
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Disposing_from_another_thread_ends_a_write_blocked_on_a_peer_that_does_not_read(ChannelMode mode)
    {
        (ChannelSecurity cs, ChannelSecurity asec) = Security(mode);
        (ChannelLoopback.Outcome c, ChannelLoopback.Outcome a) = ChannelLoopback.Handshake(cs, asec);
        using Stream accepting = a.Ok; // never read: the socket buffers fill and the writer blocks
        Stream connecting = c.Ok;
        long written = 0;
        Task writer = Start(() =>
        {
            byte[] chunk = new byte[256 * 1024];
            try { for (; ; ) { connecting.Write(chunk); Interlocked.Add(ref written, chunk.Length); } }
            catch (Exception e) when (e is IOException or ObjectDisposedException) { }
        });
        // Blocked: the kernel buffers (a few MB at most on loopback) are full and the count stops growing.
        long seen;
        do { seen = Interlocked.Read(ref written); Thread.Sleep(200); } while (Interlocked.Read(ref written) != seen && !writer.IsCompleted);
        Task dispose = Start(connecting.Dispose);
        Assert.True(dispose.Wait(ChannelLoopback.Patience), "Dispose waited for the blocked writer");
        Assert.True(writer.Wait(ChannelLoopback.Patience), "the blocked write did not end when the stream was disposed");
    }

    private static Task Start(Action action) => Task.Factory.StartNew(action, TaskCreationOptions.LongRunning);

    /// <summary>Writes in chunks of random sizes (1 byte to 200 KB), flushing now and then, and at the end.</summary>
    private static void Send(Stream stream, byte[] data, int seed)
    {
        var random = new Random(seed);
        for (int at = 0; at < data.Length;)
        {
            int n = Math.Min(data.Length - at, random.Next(4) == 0 ? random.Next(1, 16) : random.Next(1, 200_000));
            stream.Write(data, at, n);
            at += n;
            if (random.Next(8) == 0) stream.Flush();
        }
        stream.Flush();
    }

    private static byte[] Receive(Stream stream, int bytes, int seed)
    {
        var random = new Random(seed);
        byte[] got = new byte[bytes];
        for (int at = 0; at < bytes;)
        {
            int n = stream.Read(got, at, Math.Min(bytes - at, random.Next(1, 150_000)));
            Assert.True(n > 0, $"the stream ended after {at} of {bytes} bytes");
            at += n;
        }
        return got;
    }
}
