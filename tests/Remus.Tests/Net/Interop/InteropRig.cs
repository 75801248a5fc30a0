using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Net.Interop;

/// <summary>The interop test classes run one at a time (bulk transfers on a 2-core machine are enough load alone).</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class InteropCollection
{
    public const string Name = "net interop";
}

/// <summary>One test's world: a fresh namespace, the stack on a tap in it (with a relay each way), a Linux peer inside.</summary>
internal sealed class InteropRig : IDisposable
{
    public NetNamespace Ns { get; }
    public StackHarness H { get; }
    public LinuxPeer Peer { get; }

    private InteropRig(NetNamespace ns, StackHarness h, LinuxPeer peer)
    {
        Ns = ns;
        H = h;
        Peer = peer;
    }

    /// <summary>Skips unless namespaces can be made here; then builds the world.</summary>
    public static InteropRig Start(LossProfile? loss = null, int seed = 1)
    {
        NetNamespace.Require();
        StackSocket.Guard = LinuxPeer.DefaultTimeout = TestTimeouts.Scaled(TimeSpan.FromMinutes(3));
        var ns = NetNamespace.Create();
        try
        {
            var h = new StackHarness(ns.Name, ns.LinkName("t"), loss, seed);
            try
            {
                return new InteropRig(ns, h, StartPeer(ns));
            }
            catch
            {
                h.Dispose();
                throw;
            }
        }
        catch
        {
            ns.Dispose();
            throw;
        }
    }

    /// <summary>A second Linux peer in the same namespace (its commands run beside the first's).</summary>
    public LinuxPeer NewPeer() => StartPeer(Ns);

    /// <summary>tests/guests/net-interop/peer.c (built once) running inside <paramref name="ns"/>.</summary>
    public static LinuxPeer StartPeer(NetNamespace ns) => new(ns.Start(GuestBuilder.Build("net-interop/peer")), ns.Name);

    public void Dispose()
    {
        Peer.Dispose();
        H.Dispose();
        Ns.Dispose();
    }
}
