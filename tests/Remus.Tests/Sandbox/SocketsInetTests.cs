using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Sandbox;

/// <summary>
/// AF_INET sockets on the domain's own loopback (its TCP/IP stack, 127.0.0.1) print exactly what the host's Linux
/// prints for the same programs, with glibc and musl, on each platform: tests/guests/sockets/inet_tcp.c (ephemeral bind,
/// names, non-blocking and blocking connect, accept4 flags, MSG_PEEK/DONTWAIT/WAITALL, FIONREAD, readv/writev, half
/// close, a reset by SO_LINGER 0, ECONNREFUSED, EADDRINUSE, options read back, edge-triggered epoll, 1 MB with a
/// checksum) and inet_udp.c (datagrams with their source, MSG_PEEK/TRUNC, FIONREAD, connect and its filter,
/// ECONNREFUSED after the port-unreachable ICMP, EDESTADDRREQ, EMSGSIZE). The native runs use the host's loopback.
/// </summary>
public sealed class SocketsInetTests
{
    public static TheoryData<string, GuestFlavor, PlatformKind> Cases()
    {
        var d = new TheoryData<string, GuestFlavor, PlatformKind>();
        foreach (var p in Platforms.Each)
            foreach (var f in GuestBuilder.Libcs)
                foreach (var g in new[] { "inet_tcp", "inet_udp" }) d.Add(g, f, p);
        return d;
    }

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void Inet_socket_program_matches_native(string guest, GuestFlavor flavor, PlatformKind platform)
    {
        Threads.Require(platform);
        var inv = new GuestInvocation(GuestBuilder.Build("sockets/" + guest, flavor)) { Platform = platform };
        var native = NativeRun.Run(inv);
        Assert.True(native.ExitCode == 0, $"the native run itself is off:\n{native}");
        GuestAssert.SameAsNative(native, RemusCli.Run(inv), inv);
    }
}
