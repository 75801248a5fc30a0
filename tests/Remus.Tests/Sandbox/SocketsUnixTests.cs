using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Sandbox;

/// <summary>
/// AF_UNIX sockets in a domain print exactly what they print natively, with glibc and musl, on each platform:
/// tests/guests/sockets/unix_pair.c (socketpair of every type: data, MSG_PEEK/DONTWAIT/TRUNC/WAITALL, FIONREAD, poll and
/// edge-triggered epoll, filling to EAGAIN, half close, EOF, ECONNRESET, EPIPE with and without MSG_NOSIGNAL, buffer
/// options, SO_PEERCRED, 1 MB between threads) and unix_stream.c (named sockets: abstract and path names, listen/accept/
/// connect between threads, accept4 flags, the errors of each step, datagrams with source addresses, autobind).
/// </summary>
public sealed class SocketsUnixTests
{
    public static TheoryData<string, GuestFlavor, PlatformKind> Cases()
    {
        var d = new TheoryData<string, GuestFlavor, PlatformKind>();
        foreach (var p in Platforms.Each)
            foreach (var f in GuestBuilder.Libcs)
                foreach (var g in new[] { "unix_pair", "unix_stream" }) d.Add(g, f, p);
        return d;
    }

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void Unix_socket_program_matches_native(string guest, GuestFlavor flavor, PlatformKind platform)
    {
        Threads.Require(platform);
        var inv = new GuestInvocation(GuestBuilder.Build("sockets/" + guest, flavor)) { Platform = platform };
        var native = NativeRun.Run(inv);
        Assert.True(native.ExitCode == 0, $"the native run itself is off:\n{native}");
        GuestAssert.SameAsNative(native, RemusCli.Run(inv), inv);
    }
}
