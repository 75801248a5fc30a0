namespace Remus.Sandbox.Net;

/// <summary>Why the stack dropped a frame or a datagram (for the VMM's statistics).</summary>
internal enum NetDrop
{
    NotForUs,
    Malformed,
    BadChecksum,
    UnknownEtherType,
    UnknownProtocol,
    TtlExpired,
    ReassemblyLimit,
    ReassemblyOverlap,
    ReassemblyTimeout,
    ArpQueueFull,
    ArpUnresolved,
    ArpCacheFull,
    NoLink,
    NoRoute,
    LoopbackQueueFull,
    NoSocket,
    ReceiveBufferFull,
    IcmpRateLimited,
}

/// <summary>
/// Counters of the stack's interface for the VMM (frames and bytes each way, drops by reason). Not guest-visible state,
/// so not in the checkpoint: a restored stack counts from zero. Read them under the kernel lock (or accept a torn read).
/// </summary>
internal sealed class NetStats
{
    private readonly long[] _drops = new long[Enum.GetValues<NetDrop>().Length];

    public long FramesIn { get; private set; }
    public long BytesIn { get; private set; }
    public long FramesOut { get; private set; }
    public long BytesOut { get; private set; }
    public long LoopbackDatagrams { get; private set; }

    public long Drops(NetDrop reason) => _drops[(int)reason];
    public long TotalDrops => _drops.Sum();

    /// <summary>Every non-zero drop counter, by reason name.</summary>
    public IReadOnlyDictionary<string, long> DropsByReason() =>
        Enum.GetValues<NetDrop>().Where(r => _drops[(int)r] != 0).ToDictionary(r => r.ToString(), r => _drops[(int)r]);

    internal void FrameIn(int bytes) { FramesIn++; BytesIn += bytes; }
    internal void FrameOut(int bytes) { FramesOut++; BytesOut += bytes; }
    internal void Loopback() => LoopbackDatagrams++;
    internal void Drop(NetDrop reason) => _drops[(int)reason]++;
}
