namespace Remus.Sandbox.Net;

/// <summary>
/// Where the domain's network interface sends its Ethernet frames: a tap device when unprotected, output commit's
/// per-epoch hold (released on the backup's ack) when protected. Called under the kernel lock; must not block on the
/// guest. A frame is complete (destination MAC first, no preamble or FCS), at most 1514 bytes.
/// </summary>
public interface INetLink
{
    void SendFrame(ReadOnlySpan<byte> frame);
}
