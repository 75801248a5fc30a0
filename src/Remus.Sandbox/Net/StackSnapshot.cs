using Remus.Sandbox.Net.Ipv4;
using Remus.Sandbox.Net.Udp;

namespace Remus.Sandbox.Net;

/// <summary>
/// The stack in a checkpoint. Version 1, in order: the version byte; the last socket id and the next IPv4 id; the
/// ARP table (length-prefixed: present only with an interface); datagrams being reassembled (kept, not dropped: they
/// are few and bounded, and a restored stack then goes on exactly as the saved one would, a datagram completed by
/// a fragment arriving after the restore included); the path MTUs learned; datagrams waiting on the loopback (none unless saved between
/// calls); the ICMP rate limiters (global, per host); UDP (ports, then each socket from its <see cref="SnapshotCache"/>); TCP's own Save
/// last. The MAC and addresses are not saved: they come from the domain's spec, which moves with it. A version
/// other than 1 is refused, not guessed.
/// </summary>
internal static class StackSnapshot
{
    public const byte Version = 1;

    public static void Save(BinaryWriter w, Ipv4Layer ip, UdpLayer udp, ITransportProtocol tcp, SnapshotScratch scratch, bool full)
    {
        w.Write(Version);
        w.Write(ip.LastSocketId);
        w.Write(ip.NextId);
        if (ip.Arp is { } arp)
        {
            var bytes = scratch.Serialize(new Saver(arp.Save));
            w.Write(bytes.Length);
            w.Write(bytes);
        }
        else
        {
            w.Write(-1);
        }
        ip.Reassembly.Save(w);
        ip.PathMtu.Save(w);
        ip.Loopback.Save(w);
        ip.Icmp.Limiter.Save(w);
        ip.Icmp.PeerLimiter.Save(w);
        udp.Save(w, full);
        tcp.Save(w);
    }

    public static void Load(BinaryReader r, Ipv4Layer ip, UdpLayer udp, ITransportProtocol tcp)
    {
        byte version = r.ReadByte();
        if (version != Version) throw new InvalidDataException($"stack snapshot version {version}; this build reads {Version}");
        ip.LastSocketId = r.ReadInt32();
        ip.NextId = r.ReadUInt16();
        int arpLength = r.ReadInt32();
        if (arpLength >= 0)
        {
            var bytes = r.ReadBytes(arpLength);
            if (bytes.Length != arpLength) throw new EndOfStreamException();
            // A domain restored without its interface (spec changed) forgets its neighbours.
            if (ip.Arp is { } arp) arp.Load(new Kernel.SnapshotReader(bytes));
        }
        ip.Reassembly.Load(r);
        ip.PathMtu.Load(r);
        ip.Loopback.Load(r);
        ip.Icmp.Limiter.Load(r);
        ip.Icmp.PeerLimiter.Load(r);
        udp.Load(r);
        tcp.Load(r);
    }

    private sealed class Saver(Action<BinaryWriter> save) : ISnapshotState
    {
        public void SaveState(BinaryWriter w) => save(w);
    }
}
