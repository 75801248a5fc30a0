using Remus.Sandbox.Kernel.Readiness;
using Remus.Sandbox.Net;
using Xunit;

namespace Remus.Tests.Net.Interop;

/// <summary>The stack's UDP and ICMP against Linux: echo both ways, ping from Linux (also fragmented).</summary>
[Collection(InteropCollection.Name)]
public sealed class UdpIcmpInteropTests
{
    [SkippableFact]
    public void UdpEcho_TheStackEchoesLinuxDatagrams()
    {
        using var w = InteropRig.Start();
        var s = w.H.Socket(type: 2);
        s.Bind(7);
        var echo = new Thread(() =>
        {
            var buf = new byte[2048];
            for (int i = 0; i < 10; i++)
            {
                NetEndpoint from = default;
                long n = s.Call(x => x.Receive(buf, 0, out from, out _), PollEvents.In);
                if (n < 0) return;
                var data = buf[..(int)n];
                s.Call(x => x.Send(data, 0, from), PollEvents.Out);
            }
        }) { IsBackground = true };
        echo.Start();
        var u = w.Peer.Do("udp 0")[0];
        for (int i = 0; i < 10; i++)
        {
            w.Peer.Do($"udpsend {u} {StackHarness.StackIp} 7 hello-{i}");
            var r = w.Peer.Do($"udprecv {u}");
            Assert.Equal(($"{StackHarness.StackIp}:7", $"hello-{i}"), (r[0], r[1]));
        }
        Assert.True(echo.Join(StackSocket.Guard));
        w.H.ThrowIfThreadFailed();
    }

    [SkippableFact]
    public void UdpEcho_LinuxEchoesTheStacksDatagrams()
    {
        using var w = InteropRig.Start();
        var u = w.Peer.Do("udp 5353")[0];
        w.Peer.Post($"udpecho {u} 10");
        var s = w.H.Socket(type: 2);
        var to = new NetEndpoint(StackHarness.HostAddress, 5353);
        var buf = new byte[2048];
        for (int i = 0; i < 10; i++)
        {
            var msg = System.Text.Encoding.ASCII.GetBytes($"datagram {i} " + new string('x', i * 100));
            Assert.Equal(msg.Length, s.Call(x => x.Send(msg, 0, to), PollEvents.Out));
            NetEndpoint from = default;
            long n = s.Call(x => x.Receive(buf, 0, out from, out _), PollEvents.In);
            Assert.Equal(to, from);
            Assert.Equal(msg, buf[..(int)n]);
        }
        LinuxPeer.Ok("udpecho", w.Peer.ReadReply("udpecho"));
        w.H.ThrowIfThreadFailed();
    }

    [SkippableTheory]
    [InlineData(56)]
    [InlineData(4000)] // more than the MTU: Linux fragments the request, the stack reassembles it and fragments its reply
    public void Ping_FromLinux_IsAnswered(int size)
    {
        using var w = InteropRig.Start();
        Assert.Equal("5", w.Peer.Do($"ping {StackHarness.StackIp} 5 {size}")[0]);
        w.H.ThrowIfThreadFailed();
    }
}
