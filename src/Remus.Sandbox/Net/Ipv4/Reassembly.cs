using System.Buffers;
using System.Buffers.Binary;

namespace Remus.Sandbox.Net.Ipv4;

/// <summary>
/// IPv4 fragment reassembly (RFC 791, as Linux's ip_fragment.c): fragments are held per (source, destination,
/// protocol, id) until the datagram is whole or 30 s have passed since its first fragment. As Linux does, an exact
/// duplicate fragment is ignored and a fragment overlapping another in any other way discards the whole datagram
/// (RFC 5722's rule, which Linux applies to IPv4 too); a datagram past 65535 bytes is discarded. Limits: at most
/// <see cref="NetLimits.ReassemblyMaxDatagrams"/> datagrams, <see cref="NetLimits.ReassemblyMaxBytes"/> of fragments
/// and <see cref="NetLimits.ReassemblyMaxFragments"/> fragments per datagram; a fragment past them is dropped (Linux
/// refuses new fragments over ipfrag_high_thresh), so a flood costs bounded memory.
/// </summary>
internal sealed class Reassembly
{
    private readonly record struct Key(IPv4Address Source, IPv4Address Destination, byte Protocol, ushort Id);

    private readonly record struct Fragment(int Offset, PacketBuffer Data)
    {
        public int End => Offset + Data.Length;
    }

    private sealed class Datagram
    {
        public long DeadlineNs;
        public int TotalLength = -1; // payload length, known once the last fragment came
        public int Received;
        public byte[]? FirstHeader; // the header of the fragment at offset 0
        public readonly List<Fragment> Fragments = []; // sorted by offset, never overlapping
    }

    private readonly Dictionary<Key, Datagram> _datagrams = [];
    private readonly NetStats _stats;
    private readonly PacketHandler _timedOut;
    private readonly Action _deadlineChanged;
    private long _nextDeadline = long.MaxValue;
    private bool _deadlineStale;

    /// <param name="timedOut">told of a datagram given up whose first fragment came (its header and first 8 bytes): ICMP time exceeded</param>
    public Reassembly(NetStats stats, PacketHandler timedOut, Action deadlineChanged)
    {
        _stats = stats;
        _timedOut = timedOut;
        _deadlineChanged = deadlineChanged;
    }

    public int Count => _datagrams.Count;

    /// <summary>Bytes charged for the fragments held (their data plus <see cref="NetLimits.FragmentOverhead"/> each).</summary>
    public long Bytes { get; private set; }

    /// <summary>
    /// Adds one fragment (<paramref name="packet"/> is the whole IPv4 packet, trimmed to its total length). True when it
    /// completed its datagram: <paramref name="whole"/> is then the reassembled packet (its header is the first
    /// fragment's, unfragmented), in a pooled buffer the caller returns.
    /// </summary>
    public bool Add(in Ipv4Header h, ReadOnlySpan<byte> packet, long now, out PacketBuffer whole)
    {
        whole = default;
        var payload = packet[h.HeaderLength..h.TotalLength];
        int offset = h.FragmentOffset;
        int end = offset + payload.Length;
        if (h.MoreFragments) end &= ~7; // a non-final fragment's length is a multiple of 8 (Linux trims)
        payload = payload[..(end - offset > 0 ? end - offset : 0)];
        if (end <= offset || end + h.HeaderLength > 65535)
        {
            _stats.Drop(NetDrop.Malformed);
            return false;
        }
        var key = new Key(h.Source, h.Destination, h.Protocol, h.Id);
        if (!_datagrams.TryGetValue(key, out var d))
        {
            if (_datagrams.Count >= NetLimits.ReassemblyMaxDatagrams || !Fits(payload.Length))
            {
                _stats.Drop(NetDrop.ReassemblyLimit);
                return false;
            }
            d = new Datagram { DeadlineNs = now + NetLimits.ReassemblyTimeoutNs };
            _datagrams[key] = d;
            if (d.DeadlineNs < NextDeadlineNs)
            {
                _nextDeadline = d.DeadlineNs;
                _deadlineChanged();
            }
        }
        // The last fragment fixes the length; a contradiction discards the datagram.
        if (!h.MoreFragments)
        {
            if ((d.TotalLength >= 0 && d.TotalLength != end) || (d.Fragments.Count > 0 && d.Fragments[^1].End > end))
            {
                Discard(key, d, NetDrop.Malformed);
                return false;
            }
            d.TotalLength = end;
        }
        else if (d.TotalLength >= 0 && end > d.TotalLength)
        {
            Discard(key, d, NetDrop.Malformed);
            return false;
        }
        // Find the place; an exact duplicate is dropped alone, any other overlap discards the datagram.
        int i = 0;
        while (i < d.Fragments.Count && d.Fragments[i].Offset < offset) i++;
        foreach (int j in (ReadOnlySpan<int>)[i - 1, i])
        {
            if (j < 0 || j >= d.Fragments.Count) continue;
            var f = d.Fragments[j];
            if (f.Offset == offset && f.End == end)
            {
                return false; // duplicate
            }
            if (f.Offset < end && offset < f.End)
            {
                Discard(key, d, NetDrop.ReassemblyOverlap);
                return false;
            }
        }
        if (d.Fragments.Count >= NetLimits.ReassemblyMaxFragments || !Fits(payload.Length))
        {
            Discard(key, d, NetDrop.ReassemblyLimit);
            return false;
        }
        d.Fragments.Insert(i, new Fragment(offset, PacketBuffer.Copy(payload)));
        d.Received += payload.Length;
        Bytes += payload.Length + NetLimits.FragmentOverhead;
        if (offset == 0) d.FirstHeader = packet[..h.HeaderLength].ToArray();
        if (d.TotalLength < 0 || d.Received != d.TotalLength || d.FirstHeader is null) return false;

        // Whole: the first fragment's header, unfragmented, then the pieces in order.
        int headerLength = d.FirstHeader.Length;
        int total = headerLength + d.TotalLength;
        var a = ArrayPool<byte>.Shared.Rent(total);
        d.FirstHeader.CopyTo(a, 0);
        BinaryPrimitives.WriteUInt16BigEndian(a.AsSpan(2), (ushort)total);
        BinaryPrimitives.WriteUInt16BigEndian(a.AsSpan(6), (ushort)(BinaryPrimitives.ReadUInt16BigEndian(a.AsSpan(6)) & Ipv4Header.FlagDontFragment));
        a[10] = a[11] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(a.AsSpan(10), Checksum.Of(a.AsSpan(0, headerLength)));
        foreach (var f in d.Fragments) f.Data.Span.CopyTo(a.AsSpan(headerLength + f.Offset));
        Remove(key, d);
        whole = new PacketBuffer(a, total);
        return true;
    }

    public long NextDeadlineNs
    {
        get
        {
            if (_deadlineStale)
            {
                long min = long.MaxValue;
                foreach (var d in _datagrams.Values) min = Math.Min(min, d.DeadlineNs);
                _nextDeadline = min;
                _deadlineStale = false;
            }
            return _nextDeadline;
        }
    }

    public void RunTimers(long now)
    {
        if (NextDeadlineNs > now) return;
        List<(Key, Datagram)>? expired = null;
        foreach (var (k, d) in _datagrams)
            if (d.DeadlineNs <= now) (expired ??= []).Add((k, d));
        if (expired is null) return;
        Span<byte> quote = stackalloc byte[60 + 8];
        foreach (var (k, d) in expired)
        {
            int n = 0;
            if (d.FirstHeader is { } header && d.Fragments.Count > 0 && d.Fragments[0].Offset == 0)
            {
                header.CopyTo(quote);
                var first = d.Fragments[0].Data.Span;
                n = header.Length + Math.Min(8, first.Length);
                first[..(n - header.Length)].CopyTo(quote[header.Length..]);
            }
            Discard(k, d, NetDrop.ReassemblyTimeout);
            if (n > 0) _timedOut(quote[..n]);
        }
    }

    private bool Fits(int bytes) => Bytes + bytes + NetLimits.FragmentOverhead <= NetLimits.ReassemblyMaxBytes;

    private void Discard(Key key, Datagram d, NetDrop reason)
    {
        _stats.Drop(reason);
        Remove(key, d);
    }

    private void Remove(Key key, Datagram d)
    {
        foreach (var f in d.Fragments)
        {
            Bytes -= f.Data.Length + NetLimits.FragmentOverhead;
            f.Data.Return();
        }
        d.Fragments.Clear();
        _datagrams.Remove(key);
        _deadlineStale = true;
    }

    public void Save(BinaryWriter w)
    {
        w.Write(_datagrams.Count);
        foreach (var (k, d) in _datagrams)
        {
            w.Write(k.Source.Value);
            w.Write(k.Destination.Value);
            w.Write(k.Protocol);
            w.Write(k.Id);
            w.Write(d.DeadlineNs);
            w.Write(d.TotalLength);
            w.Write(d.FirstHeader?.Length ?? 0);
            if (d.FirstHeader is { } h) w.Write(h);
            w.Write(d.Fragments.Count);
            foreach (var f in d.Fragments)
            {
                w.Write(f.Offset);
                f.Data.Save(w);
            }
        }
    }

    public void Load(BinaryReader r)
    {
        int n = r.ReadInt32();
        if (n is < 0 or > NetLimits.ReassemblyMaxDatagrams) throw new InvalidDataException($"stack snapshot: {n} datagrams in reassembly");
        for (int i = 0; i < n; i++)
        {
            var key = new Key(new IPv4Address(r.ReadUInt32()), new IPv4Address(r.ReadUInt32()), r.ReadByte(), r.ReadUInt16());
            var d = new Datagram { DeadlineNs = r.ReadInt64(), TotalLength = r.ReadInt32() };
            int hl = r.ReadInt32();
            if (hl is < 0 or > 60) throw new InvalidDataException("stack snapshot: bad fragment header");
            if (hl > 0) d.FirstHeader = r.ReadBytes(hl);
            int frags = r.ReadInt32();
            if (frags is < 0 or > NetLimits.ReassemblyMaxFragments) throw new InvalidDataException("stack snapshot: too many fragments");
            for (int j = 0; j < frags; j++)
            {
                var f = new Fragment(r.ReadInt32(), PacketBuffer.Load(r));
                d.Fragments.Add(f);
                d.Received += f.Data.Length;
                Bytes += f.Data.Length + NetLimits.FragmentOverhead;
            }
            _datagrams[key] = d;
        }
        _deadlineStale = true;
    }
}
