namespace Remus.Sandbox.Net.Tcp;

/// <summary>
/// TCP's part of the checkpoint: the ISN key, the ephemeral-port cursor, every socket (listeners with their accept
/// queues) and every connection in every state (also those the program closed, still draining, and TIME_WAIT):
/// sequence state, send/receive/out-of-order bytes, options, congestion and RTT state, timers as guest-clock
/// deadlines. Each socket's and connection's bytes are cached and serialized again only when something touched it
/// since the last Save, so idle connections cost a copy of their cached bytes.
/// </summary>
internal sealed partial class TcpLayer
{
    private const uint Magic = 0x54435031; // "TCP1"

    public void Save(BinaryWriter w)
    {
        w.Write(Magic);
        Isn.Save(w);
        w.Write(Ports.Cursor);
        w.Write(_nextKey);
        w.Write(_sockets.Count);
        foreach (var s in _sockets.Values)
        {
            if (s.Dirty || s.Cached == null) { s.Cached = Serialize(s); s.Dirty = false; }
            w.Write(s.Cached);
        }
        w.Write(_conns.Count);
        foreach (var c in _conns.Values)
        {
            if (c.Dirty || c.Cached == null) { c.Cached = Serialize(c); c.Dirty = false; }
            w.Write(c.Cached);
        }
        // Connections no longer in the table but still held by a socket (reset, refused: data left to read, SO_ERROR).
        var detached = _sockets.Values.Where(s => s.Tcb is { InTable: false }).Select(s => s.Tcb!).ToList();
        w.Write(detached.Count);
        foreach (var c in detached)
        {
            if (c.Dirty || c.Cached == null) { c.Cached = Serialize(c); c.Dirty = false; }
            w.Write(c.Cached);
        }
    }

    public void Load(BinaryReader r)
    {
        if (r.ReadUInt32() != Magic) throw new InvalidDataException("tcp: bad snapshot");
        // Replaces whatever this layer held (a backup loads every checkpoint into the same stack).
        _conns.Clear();
        _sockets.Clear();
        _timers.Clear();
        Ports.Clear();
        Budget.Reset();
        _timeWait = 0;
        Isn.Load(r);
        Ports.Cursor = r.ReadInt32();
        _nextKey = r.ReadInt32();
        var socketRecords = new List<SocketRecord>();
        int ns = r.ReadInt32();
        for (int i = 0; i < ns; i++) socketRecords.Add(ReadSocket(r));
        var byId = socketRecords.ToDictionary(x => x.Socket.Id, x => x.Socket);
        var byKey = new Dictionary<int, TcpControlBlock>();
        var connRecords = new List<ConnRecord>();
        int nc = r.ReadInt32();
        for (int i = 0; i < nc; i++) connRecords.Add(ReadConnection(r, inTable: true));
        int nd = r.ReadInt32();
        for (int i = 0; i < nd; i++) connRecords.Add(ReadConnection(r, inTable: false));
        foreach (var cr in connRecords) byKey[cr.Conn.Key] = cr.Conn;

        foreach (var sr in socketRecords)
        {
            var s = sr.Socket;
            _sockets[s.Id] = s;
            if (sr.TcbKey >= 0) { s.Tcb = byKey[sr.TcbKey]; s.Options = s.Tcb.Options; }
            foreach (int id in sr.AcceptIds) s.AcceptQueue.Add(byId[id]);
            if (s.Binding != null) { s.Binding.Socket = s; s.Binding.Connection = s.Tcb; Ports.Add(s.Binding); }
        }
        foreach (var cr in connRecords)
        {
            var c = cr.Conn;
            if (cr.OwnerId >= 0) { c.Owner = byId[cr.OwnerId]; c.Binding = c.Owner.Binding; }
            else if (c.Binding != null) { c.Binding.Connection = c; Ports.Add(c.Binding); }
            if (cr.ListenerId >= 0) { c.Listener = byId[cr.ListenerId]; c.Listener.SynQueue.Add(c); }
            c.Cached = cr.Bytes;
            c.Dirty = false;
            if (c.InTable)
            {
                if (c.State == TcpState.TimeWait) TryAddTimeWait(c);
                _conns[ConnKey.Of(c.Local, c.Remote)] = c;
                _timers.Schedule(c);
            }
        }
        foreach (var sr in socketRecords) { sr.Socket.Cached = sr.Bytes; sr.Socket.Dirty = false; }
        _timers.Live = _conns.Count;
        _reportedDeadline = long.MaxValue;
    }

    private static byte[] Serialize(TcpSocket s)
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms))
        {
            w.Write(0); // length, patched below
            w.Write(s.Id);
            s.Options.Save(w);
            w.Write(s.Binding != null);
            if (s.Binding != null) WriteBinding(w, s.Binding);
            w.Write(s.Tcb?.Key ?? -1);
            w.Write(s.IsListening);
            w.Write(s.Backlog);
            w.Write(s.AcceptQueue.Count);
            foreach (var a in s.AcceptQueue) w.Write(a.Id);
            w.Write(s.Connecting); w.Write(s.Connected); w.Write(s.ReadShut); w.Write(s.WriteShut); w.Write(s.SoError);
            w.Write(s.LastCookieNs);
        }
        var bytes = ms.ToArray();
        BitConverter.TryWriteBytes(bytes, bytes.Length - 4);
        return bytes;
    }

    private sealed record SocketRecord(TcpSocket Socket, int TcbKey, List<int> AcceptIds, byte[] Bytes);

    private SocketRecord ReadSocket(BinaryReader outer)
    {
        var bytes = ReadRecord(outer);
        using var r = new Kernel.SnapshotReader(bytes, 4, bytes.Length - 4);
        int id = r.ReadInt32();
        var s = new TcpSocket(this, id, TcpOptions.Load(r));
        if (r.ReadBoolean()) s.Binding = ReadBinding(r);
        int tcbKey = r.ReadInt32();
        s.IsListening = r.ReadBoolean();
        s.Backlog = r.ReadInt32();
        var accept = new List<int>();
        int n = r.ReadInt32();
        for (int i = 0; i < n; i++) accept.Add(r.ReadInt32());
        s.Connecting = r.ReadBoolean(); s.Connected = r.ReadBoolean(); s.ReadShut = r.ReadBoolean(); s.WriteShut = r.ReadBoolean();
        s.SoError = r.ReadInt32();
        s.LastCookieNs = r.ReadInt64();
        return new SocketRecord(s, tcbKey, accept, bytes);
    }

    private static byte[] ReadRecord(BinaryReader r)
    {
        int len = r.ReadInt32();
        if (len < 0 || len > (64 << 20)) throw new InvalidDataException("tcp: bad record length");
        var bytes = new byte[len + 4];
        BitConverter.TryWriteBytes(bytes, len);
        if (r.Read(bytes, 4, len) != len) throw new EndOfStreamException();
        return bytes;
    }

    private static void WriteBinding(BinaryWriter w, PortBinding b)
    {
        w.Write(b.Local.Address.Value); w.Write(b.Local.Port); w.Write(b.ReuseAddress); w.Write(b.ReusePort);
    }

    private static PortBinding ReadBinding(BinaryReader r) =>
        new(new NetEndpoint(new IPv4Address(r.ReadUInt32()), r.ReadUInt16()), r.ReadBoolean(), r.ReadBoolean());

    private static byte[] Serialize(TcpControlBlock c)
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms))
        {
            w.Write(0);
            w.Write(c.Key);
            w.Write((byte)c.State);
            w.Write(c.Local.Address.Value); w.Write(c.Local.Port);
            w.Write(c.Remote.Address.Value); w.Write(c.Remote.Port);
            c.Options.Save(w);
            w.Write(c.Owner?.Id ?? -1);
            w.Write(c.Listener?.Id ?? -1);
            bool ownBinding = c.Owner == null && c.Binding != null;
            w.Write(ownBinding);
            if (ownBinding) WriteBinding(w, c.Binding!);
            w.Write(c.Iss); w.Write(c.SndUna); w.Write(c.SndNxt); w.Write(c.SndMax); w.Write(c.SndWl1); w.Write(c.SndWl2);
            w.Write(c.SndWnd); w.Write(c.MaxSndWnd); w.Write(c.SndScale); w.Write(c.SndBufSeq); w.Write(c.FinQueued);
            w.Write(c.Irs); w.Write(c.RcvNxt); w.Write(c.RcvAdvEdge); w.Write(c.RcvScale); w.Write(c.FinReceived);
            w.Write(c.HasOutOfOrderFin); w.Write(c.OutOfOrderFinSeq);
            w.Write(c.PeerMss); w.Write(c.SendMss); w.Write(c.Timestamps); w.Write(c.SackOk); w.Write(c.TsRecent); w.Write(c.TsOffset); w.Write(c.UserClosed);
            c.Cc.Save(w);
            c.Rtt.Save(w);
            w.Write(c.RttTiming); w.Write(c.RttSeq); w.Write(c.RttStartNs);
            c.Sacked.Save(w);
            w.Write(c.RtoDeadline); w.Write(c.PersistDeadline); w.Write(c.DelAckDeadline); w.Write(c.KeepDeadline); w.Write(c.CloseDeadline); w.Write(c.ProbeDeadline); w.Write(c.ProbeSent);
            w.Write(c.Retransmits); w.Write(c.KeepProbes); w.Write(c.PersistBackoff); w.Write(c.AckPending); w.Write(c.AckNow);
            w.Write(c.LastRecvNs); w.Write(c.LastSendNs); w.Write(c.TotalRetransmits);
            // Send buffer bytes, then the receive buffer (in-order and out-of-order).
            w.Write(c.Snd.Capacity);
            w.Write(c.Snd.Count);
            if (c.Snd.Count > 0)
            {
                var tmp = System.Buffers.ArrayPool<byte>.Shared.Rent(c.Snd.Count);
                c.Snd.Peek(0, tmp.AsSpan(0, c.Snd.Count));
                w.Write(tmp, 0, c.Snd.Count);
                System.Buffers.ArrayPool<byte>.Shared.Return(tmp);
            }
            c.Rcv.Save(w, c.RcvNxt);
        }
        var bytes = ms.ToArray();
        BitConverter.TryWriteBytes(bytes, bytes.Length - 4);
        return bytes;
    }

    private sealed record ConnRecord(TcpControlBlock Conn, int OwnerId, int ListenerId, byte[] Bytes);

    private ConnRecord ReadConnection(BinaryReader outer, bool inTable)
    {
        var bytes = ReadRecord(outer);
        using var r = new Kernel.SnapshotReader(bytes, 4, bytes.Length - 4);
        int key = r.ReadInt32();
        var state = (TcpState)r.ReadByte();
        var local = new NetEndpoint(new IPv4Address(r.ReadUInt32()), r.ReadUInt16());
        var remote = new NetEndpoint(new IPv4Address(r.ReadUInt32()), r.ReadUInt16());
        var options = TcpOptions.Load(r);
        var c = new TcpControlBlock(this, key, options, local, remote) { State = state, InTable = inTable };
        int owner = r.ReadInt32(), listener = r.ReadInt32();
        if (r.ReadBoolean()) c.Binding = ReadBinding(r);
        c.Iss = r.ReadUInt32(); c.SndUna = r.ReadUInt32(); c.SndNxt = r.ReadUInt32(); c.SndMax = r.ReadUInt32();
        c.SndWl1 = r.ReadUInt32(); c.SndWl2 = r.ReadUInt32();
        c.SndWnd = r.ReadInt64(); c.MaxSndWnd = r.ReadInt64(); c.SndScale = r.ReadInt32(); c.SndBufSeq = r.ReadUInt32(); c.FinQueued = r.ReadBoolean();
        c.Irs = r.ReadUInt32(); c.RcvNxt = r.ReadUInt32(); c.RcvAdvEdge = r.ReadUInt32(); c.RcvScale = r.ReadInt32(); c.FinReceived = r.ReadBoolean();
        c.HasOutOfOrderFin = r.ReadBoolean(); c.OutOfOrderFinSeq = r.ReadUInt32();
        c.PeerMss = r.ReadInt32(); c.SendMss = r.ReadInt32(); c.Timestamps = r.ReadBoolean(); c.SackOk = r.ReadBoolean();
        c.TsRecent = r.ReadUInt32(); c.TsOffset = r.ReadUInt32(); c.UserClosed = r.ReadBoolean();
        c.Cc.Load(r);
        c.Rtt.Load(r);
        c.RttTiming = r.ReadBoolean(); c.RttSeq = r.ReadUInt32(); c.RttStartNs = r.ReadInt64();
        c.Sacked.Load(r);
        c.RtoDeadline = r.ReadInt64(); c.PersistDeadline = r.ReadInt64(); c.DelAckDeadline = r.ReadInt64(); c.KeepDeadline = r.ReadInt64(); c.CloseDeadline = r.ReadInt64(); c.ProbeDeadline = r.ReadInt64(); c.ProbeSent = r.ReadBoolean();
        c.Retransmits = r.ReadInt32(); c.KeepProbes = r.ReadInt32(); c.PersistBackoff = r.ReadInt32(); c.AckPending = r.ReadInt32(); c.AckNow = r.ReadBoolean();
        c.LastRecvNs = r.ReadInt64(); c.LastSendNs = r.ReadInt64(); c.TotalRetransmits = r.ReadInt64();
        c.Snd.Capacity = r.ReadInt32();
        int sndCount = r.ReadInt32();
        if (sndCount > 0) c.Snd.Append(r.ReadBytes(sndCount));
        c.Rcv.Load(r, c.RcvNxt);
        return new ConnRecord(c, owner, listener, bytes);
    }
}
