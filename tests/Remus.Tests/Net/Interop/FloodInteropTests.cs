using Remus.Sandbox.Net;
using Xunit;

namespace Remus.Tests.Net.Interop;

/// <summary>A SYN flood and a flood of broken frames cost the stack bounded memory, and it still serves afterwards.</summary>
[Collection(InteropCollection.Name)]
public sealed class FloodInteropTests
{
    private const ushort Port = 8080;

    [SkippableFact]
    public void SynFlood_CostsBoundedMemory_AndTheListenerStillServes()
    {
        using var w = InteropRig.Start();
        using var server = new StackEchoServer(w.H, Port);
        var stackMac = w.H.Stack.Spec!.Mac;
        var fakeMac = new MacAddress(0x02_00_00_00_00_99);
        var random = new Random(77);
        var frame = new byte[128];
        void Flood(int count)
        {
            for (int i = 0; i < count; i++)
            {
                var src = new NetEndpoint(new IPv4Address(0x0A630000u | (uint)random.Next(3, 255)), (ushort)random.Next(1024, 65535));
                int n = Frames.WriteSyn(frame, fakeMac, stackMac, src, new NetEndpoint(StackHarness.StackAddress, Port), (uint)random.Next());
                lock (w.H.Lock) w.H.Stack.ReceiveFrame(frame.AsSpan(0, n));
            }
        }
        Flood(10_000);
        long afterFirst = SavedSize(w), heapFirst = GC.GetTotalMemory(forceFullCollection: true);
        Flood(90_000);
        long afterAll = SavedSize(w), heapAll = GC.GetTotalMemory(forceFullCollection: true);
        // Ten times the SYNs: the stack's state (its checkpoint) and the heap did not grow with them.
        Assert.True(afterAll <= afterFirst + afterFirst / 10 + 4096, $"checkpoint {afterFirst} bytes after 10k SYNs, {afterAll} after 100k");
        Assert.True(heapAll - heapFirst < 16 << 20, $"heap {heapFirst} after 10k SYNs, {heapAll} after 100k");
        // A real client still gets through (Linux retries its SYN while the half-open ones age out).
        var r = w.Peer.Do($"many {StackHarness.StackIp} {Port} 3 1000 5");
        Assert.Equal("3", r[0]);
        server.ThrowIfFailed();
        w.H.ThrowIfThreadFailed();
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
