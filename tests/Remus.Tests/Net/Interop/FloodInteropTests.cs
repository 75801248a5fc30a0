using Remus.Sandbox.Net;
using Xunit;

namespace Remus.Tests.Net.Interop;

/// <summary>A SYN flood and a flood of broken frames cost the stack bounded memory, and it still serves afterwards.</summary>
[Collection(InteropCollection.Name)]
public sealed class FloodInteropTests
{
    private const ushort Port = 8080;

    [SkippableFact]
    public void SynFlood_CostsBoundedMemory()
    {
        using var w = InteropRig.Start();
        using var server = new StackEchoServer(w.H, Port);
        var flood = new SynFlood(w, seed: 77);
        flood.Send(10_000);
        long afterFirst = SavedSize(w), heapFirst = GC.GetTotalMemory(forceFullCollection: true);
        flood.Send(90_000);
        long afterAll = SavedSize(w), heapAll = GC.GetTotalMemory(forceFullCollection: true);
        // Ten times the SYNs: the stack's state (its checkpoint) and the heap did not grow with them.
        Assert.True(afterAll <= afterFirst + afterFirst / 10 + 4096, $"checkpoint {afterFirst} bytes after 10k SYNs, {afterAll} after 100k");
        Assert.True(heapAll - heapFirst < 16 << 20, $"heap {heapFirst} after 10k SYNs, {heapAll} after 100k");
        // The other listeners and connections are untouched: a fresh listener serves at once.
        using var other = new StackEchoServer(w.H, Port + 1);
        Assert.Equal("3", w.Peer.Do($"many {StackHarness.StackIp} {Port + 1} 3 1000 5")[0]);
        server.ThrowIfFailed();
        w.H.ThrowIfThreadFailed();
    }

    [SkippableFact]
    public void SynFlood_TheFloodedListenerStillAnswersARealClientsFirstSyn()
    {
        using var w = InteropRig.Start();
        using var server = new StackEchoServer(w.H, Port);
        new SynFlood(w, seed: 79).Send(10_000);
        // Count the client's SYNs (from the host address) until the stack's SYN-ACK to it: the first must be answered.
        int clientSyns = 0, synsWhenAnswered = -1;
        w.H.Inbound.Delivered = f =>
        {
            if (Frames.Tcp(f) is { DestinationPort: Port, Flags: Frames.Syn } t && t.Source == StackHarness.HostAddress) clientSyns++;
        };
        w.H.Outbound.Delivered = f =>
        {
            if (synsWhenAnswered < 0 && Frames.Tcp(f) is { SourcePort: Port } t && t.Destination == StackHarness.HostAddress
                && (t.Flags & (Frames.Syn | Frames.Ack)) == (Frames.Syn | Frames.Ack)) synsWhenAnswered = clientSyns;
        };
        Assert.Equal("1", w.Peer.Do($"many {StackHarness.StackIp} {Port} 1 1000 5")[0]);
        Assert.Equal(1, w.H.Locked(_ => synsWhenAnswered));
        w.H.ThrowIfThreadFailed();
    }

    /// <summary>Forged SYNs from random addresses of the subnet (that nobody answers ARP for) to the listener, straight into the stack.</summary>
    private sealed class SynFlood(InteropRig w, int seed)
    {
        private readonly Random random = new(seed);
        private readonly byte[] frame = new byte[128];

        public void Send(int count)
        {
            var stackMac = w.H.Stack.Spec!.Mac;
            var fakeMac = new MacAddress(0x02_00_00_00_00_99);
            for (int i = 0; i < count; i++)
            {
                var src = new NetEndpoint(new IPv4Address(0x0A630000u | (uint)random.Next(3, 255)), (ushort)random.Next(1024, 65535));
                int n = Frames.WriteSyn(frame, fakeMac, stackMac, src, new NetEndpoint(StackHarness.StackAddress, Port), (uint)random.Next());
                lock (w.H.Lock) w.H.Stack.ReceiveFrame(frame.AsSpan(0, n));
            }
        }
    }

    [SkippableFact]
    public void BrokenFrames_AreDropped_AndTheStackStillServes()
    {
        using var w = InteropRig.Start();
        using var server = new StackEchoServer(w.H, Port);
        var stackMac = w.H.Stack.Spec!.Mac;
        var random = new Random(78);
        var frame = new byte[1600];
        var good = new byte[128];
        for (int i = 0; i < 50_000; i++)
        {
            int n;
            if (i % 2 == 0)
            {
                // A valid SYN, then damaged: a random byte flipped, or cut short.
                n = Frames.WriteSyn(good, new MacAddress(0x02_00_00_00_00_98), stackMac,
                    new NetEndpoint(new IPv4Address(0x0A630000u | (uint)random.Next(3, 255)), (ushort)random.Next(1024, 65535)),
                    new NetEndpoint(StackHarness.StackAddress, Port), (uint)random.Next());
                good.AsSpan(0, n).CopyTo(frame);
                if (random.Next(2) == 0) frame[14 + random.Next(n - 14)] ^= (byte)(1 << random.Next(8));
                else n = random.Next(0, n);
            }
            else
            {
                // Random bytes behind a real Ethernet header: IPv4 or ARP.
                n = random.Next(0, frame.Length);
                random.NextBytes(frame.AsSpan(0, n));
                if (n >= 14)
                {
                    stackMac.Write(frame);
                    frame[12] = 0x08;
                    frame[13] = random.Next(4) == 0 ? (byte)0x06 : (byte)0x00;
                    if (frame[13] == 0 && n > 14) frame[14] = (byte)(0x40 | (frame[14] & 15));
                }
            }
            lock (w.H.Lock) w.H.Stack.ReceiveFrame(frame.AsSpan(0, n));
        }
        var r = w.Peer.Do($"many {StackHarness.StackIp} {Port} 3 1000 5");
        Assert.Equal("3", r[0]);
        server.ThrowIfFailed();
        w.H.ThrowIfThreadFailed();
    }

    private static long SavedSize(InteropRig w)
    {
        using var ms = new MemoryStream();
        lock (w.H.Lock)
        {
            using var bw = new BinaryWriter(ms, System.Text.Encoding.UTF8, leaveOpen: true);
            w.H.Stack.Save(bw);
        }
        return ms.Length;
    }
}
