using Remus.Sandbox.Net.Sockets;

namespace Remus.Sandbox.Net;

/// <summary>
/// The domain's TCP/IP stack (issue 9): lives in the VMM and in the checkpoint. CONTRACT SKELETON — the net-ip helper
/// replaces the bodies; the public surface below is what the syscall layer, the VMM's tap pump and the TCP layer use.
/// Every member runs under the kernel lock.
/// </summary>
internal sealed class NetStack
{
    /// <param name="nowNs">the guest's monotonic clock (ns)</param>
    /// <param name="spec">the domain's interface; null: loopback only (127.0.0.0/8 still works)</param>
    public NetStack(Func<long> nowNs, NetworkSpec? spec)
    {
        NowNs = nowNs;
        Spec = spec;
    }

    public Func<long> NowNs { get; }
    public NetworkSpec? Spec { get; }

    /// <summary>Where outbound frames go (the tap, or output commit's hold); null: dropped (no interface yet).</summary>
    public void AttachLink(INetLink? link) => throw new NotImplementedException();

    /// <summary>An inbound Ethernet frame from the tap.</summary>
    public void ReceiveFrame(ReadOnlySpan<byte> frame) => throw new NotImplementedException();

    /// <summary>The earliest timer deadline of the stack (guest monotonic ns); long.MaxValue when none.</summary>
    public long NextDeadlineNs => long.MaxValue;

    /// <summary>Runs every timer whose deadline has passed.</summary>
    public void RunTimers() => throw new NotImplementedException();

    /// <summary>Called (under the kernel lock) when <see cref="NextDeadlineNs"/> may have moved earlier: the timer thread looks again.</summary>
    public Action? DeadlineMoved { get; set; }

    /// <summary>socket(AF_INET, type, protocol): 0 and the socket, or a negated errno (EPROTONOSUPPORT, ENOBUFS past the limit).</summary>
    public long CreateSocket(int type, int protocol, out IInetSocket? socket) => throw new NotImplementedException();

    /// <summary>Gratuitous ARP for the domain's address (after start, restore, migration, takeover).</summary>
    public void AnnounceAddress() => throw new NotImplementedException();

    /// <summary>The whole stack: sockets (by <see cref="IInetSocket.Id"/>), TCBs, queues, timers, ARP table, ISN, ports.</summary>
    public void Save(BinaryWriter w) => throw new NotImplementedException();

    /// <summary>Replaces this (fresh) stack's state with a checkpoint's.</summary>
    public void Load(BinaryReader r) => throw new NotImplementedException();

    /// <summary>A socket restored by <see cref="Load"/>, for the kernel's open files.</summary>
    public IInetSocket? SocketById(int id) => throw new NotImplementedException();
}
