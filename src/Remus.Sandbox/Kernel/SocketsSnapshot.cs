using Remus.Sandbox.Kernel.Files;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// Sockets in the checkpoint (kernel state version 5), written before the open files that name them: first the
/// domain's TCP/IP stack (<see cref="Net.NetStack.Save"/>, length-prefixed), then every AF_UNIX socket the program can
/// still reach (through its files, a peer, a listener's accept queue, a message's sender, a bound name) with every
/// buffered byte, its peer, its accept queue, its name, shutdown bits, pending error, buffer sizes, options and peer
/// credentials, then the names taken. An AF_INET socket file names its socket by <see cref="Net.Sockets.IInetSocket.Id"/>
/// (resolved with <see cref="Net.NetStack.SocketById"/> after the stack is back); an AF_UNIX file by its index here.
/// </summary>
internal sealed partial class SandboxKernel
{
    private const byte KindUnixSocket = 8, KindInetSocket = 9;

    /// <summary>While a checkpoint is read: the AF_UNIX sockets by index.</summary>
    private List<UnixSocket>? _loadedUnix;

    /// <summary>While a checkpoint is written: the AF_UNIX sockets' indices.</summary>
    private Dictionary<UnixSocket, int>? _savedUnix;

    private void SaveSockets(BinaryWriter w, List<FileDescription> descriptions)
    {
        SaveNetStack(w);

        // Every socket reachable, in a stable order: files first, then what they lead to.
        var all = new List<UnixSocket>();
        var index = new Dictionary<UnixSocket, int>();
        void Add(UnixSocket? s)
        {
            if (s != null && index.TryAdd(s, all.Count)) all.Add(s);
        }
        foreach (var f in descriptions) if (f is UnixSocketFile u) Add(u.Socket);
        foreach (var (_, s) in UnixNames.Names) Add(s);
        for (int i = 0; i < all.Count; i++)
        {
            var s = all[i];
            Add(s.Peer);
            foreach (var b in s.Backlog) Add(b);
            foreach (var m in s.Received) Add(m.Sender);
        }
        w.Write(all.Count);
        foreach (var s in all) w.Write(s.Type);
        foreach (var s in all)
        {
            w.Write((byte)s.State);
            w.Write(s.Dead);
            w.Write(s.ShutRead);
            w.Write(s.ShutWrite);
            w.Write(s.Error);
            WriteBytes(w, s.Name);
            w.Write(s.Peer is { } p ? index[p] : -1);
            w.Write(s.SendBuffer);
            w.Write(s.ReceiveBuffer);
            w.Write(s.BacklogMax);
            w.Write(s.PeerCred.HasValue);
            if (s.PeerCred is { } c) { w.Write(c.Pid); w.Write(c.Uid); w.Write(c.Gid); }
            w.Write(s.Options.Count);
            foreach (var (k, v) in s.Options) { w.Write(k); w.Write(v); }
            w.Write(s.Received.Count);
            foreach (var m in s.Received)
            {
                w.Write(m.Sender is { } snd ? index[snd] : -1);
                WriteBytes(w, m.From);
                w.Write(m.Length);
                w.Write(m.Data, m.Offset, m.Length);
            }
            w.Write(s.Backlog.Count);
            foreach (var b in s.Backlog) w.Write(index[b]);
        }
        w.Write(UnixNames.Names.Count);
        foreach (var (key, s) in UnixNames.Names)
        {
            w.Write(key);
            w.Write(s is null ? -1 : index[s]);
        }
        _savedUnix = index;
    }

    private void LoadSockets(BinaryReader r)
    {
        int netLength = r.ReadInt32();
        if (netLength < 0) throw Corrupt("network stack");
        byte[] net = r.ReadBytes(netLength);
        if (net.Length != netLength) throw new EndOfStreamException();
        if (netLength > 0)
        {
            // The open files of the state being replaced name sockets of the stack being replaced: detach them first.
            foreach (var (_, f, _) in Fds.All)
                if (f is Files.InetSocketFile old) old.Detach();
            using var nr = new SnapshotReader(net);
            Net.Load(nr);
        }

        var names = new UnixNamespace();
        int n = r.ReadInt32();
        if (n is < 0 or > 1 << 20) throw Corrupt("unix sockets");
        var all = new List<UnixSocket>(n);
        for (int i = 0; i < n; i++)
        {
            int type = r.ReadInt32();
            if (type is not (SocketFile.SOCK_STREAM or SocketFile.SOCK_DGRAM or SocketFile.SOCK_SEQPACKET)) throw Corrupt("unix socket type");
            all.Add(new UnixSocket(type, names));
        }
        UnixSocket? At(int i) => i == -1 ? null : i >= 0 && i < n ? all[i] : throw Corrupt("unix socket reference");
        foreach (var s in all)
        {
            byte state = r.ReadByte();
            if (state > (byte)UnixSocket.SocketState.Connected) throw Corrupt("unix socket state");
            s.State = (UnixSocket.SocketState)state;
            s.Dead = r.ReadBoolean();
            s.ShutRead = r.ReadBoolean();
            s.ShutWrite = r.ReadBoolean();
            s.Error = r.ReadInt32();
            s.Name = ReadBytes(r);
            s.Peer = At(r.ReadInt32());
            s.SendBuffer = r.ReadInt32();
            s.ReceiveBuffer = r.ReadInt32();
            s.BacklogMax = r.ReadInt32();
            if (r.ReadBoolean()) s.PeerCred = (r.ReadInt32(), r.ReadInt32(), r.ReadInt32());
            int options = r.ReadInt32();
            if (options is < 0 or > 256) throw Corrupt("unix socket options");
            for (int i = 0; i < options; i++) s.Options[r.ReadInt32()] = r.ReadInt32();
            int messages = r.ReadInt32();
            if (messages < 0) throw Corrupt("unix socket queue");
            for (int i = 0; i < messages; i++)
            {
                var sender = At(r.ReadInt32());
                byte[]? from = ReadBytes(r);
                int length = r.ReadInt32();
                if (length is < 0 or > 1 << 26) throw Corrupt("unix socket message");
                byte[] data = r.ReadBytes(length);
                if (data.Length != length) throw new EndOfStreamException();
                s.Restore(new UnixMessage { Data = data, Sender = sender, From = from });
            }
            int backlog = r.ReadInt32();
            if (backlog < 0) throw Corrupt("unix socket backlog");
            for (int i = 0; i < backlog; i++) s.Backlog.Enqueue(At(r.ReadInt32()) ?? throw Corrupt("unix socket backlog"));
        }
        int nn = r.ReadInt32();
        if (nn < 0) throw Corrupt("unix names");
        for (int i = 0; i < nn; i++)
        {
            string key = r.ReadString();
            names.Restore(key, At(r.ReadInt32()));
        }
        UnixNames = names;
        _loadedUnix = all;
    }

    /// <summary>
    /// The stack's state, length-prefixed in the checkpoint so that its own format stays the stack's business. Written
    /// in place and the length patched after (the kernel's stream is a MemoryStream): a stack with many connections is
    /// hundreds of KiB, and a buffer of its own copied in cost the pause of every checkpoint.
    /// </summary>
    private void SaveNetStack(BinaryWriter w)
    {
        w.Flush();
        var stream = w.BaseStream;
        long at = stream.Position;
        w.Write(0);
        Net.Save(w);
        w.Flush();
        long end = stream.Position;
        stream.Position = at;
        w.Write(checked((int)(end - at - 4)));
        w.Flush();
        stream.Position = end;
    }

    private static void WriteBytes(BinaryWriter w, byte[]? b)
    {
        w.Write(b?.Length ?? -1);
        if (b != null) w.Write(b);
    }

    private static byte[]? ReadBytes(BinaryReader r)
    {
        int n = r.ReadInt32();
        if (n == -1) return null;
        if (n is < 0 or > 4096) throw Corrupt("socket name");
        byte[] b = r.ReadBytes(n);
        if (b.Length != n) throw new EndOfStreamException();
        return b;
    }

    /// <summary>Writes a socket file (kind byte first); false when <paramref name="f"/> is not one.</summary>
    private bool SaveSocketFile(BinaryWriter w, FileDescription f)
    {
        switch (f)
        {
            case UnixSocketFile u:
                w.Write(KindUnixSocket);
                w.Write(_savedUnix![u.Socket]);
                w.Write(u.Cred.Pid);
                w.Write(u.Cred.Uid);
                w.Write(u.Cred.Gid);
                break;
            case InetSocketFile i:
                w.Write(KindInetSocket);
                w.Write(i.Socket.Id);
                w.Write(i.IsListening);
                w.Write(i.Connecting);
                break;
            default:
                return false;
        }
        var s = (SocketFile)f;
        w.Write(s.ReceiveTimeoutNs);
        w.Write(s.SendTimeoutNs);
        return true;
    }

    /// <summary>Reads a socket file of kind <paramref name="kind"/>; null when the kind is not a socket's.</summary>
    private SocketFile? LoadSocketFile(byte kind, BinaryReader r, int flags)
    {
        SocketFile f;
        switch (kind)
        {
            case KindUnixSocket:
            {
                int i = r.ReadInt32();
                if (_loadedUnix == null || i < 0 || i >= _loadedUnix.Count) throw Corrupt("unix socket file");
                f = new UnixSocketFile(_loadedUnix[i], 0, (r.ReadInt32(), r.ReadInt32(), r.ReadInt32()));
                break;
            }
            case KindInetSocket:
            {
                int id = r.ReadInt32();
                var socket = Net.SocketById(id) ?? throw Corrupt($"inet socket {id}");
                var inet = new InetSocketFile(socket, 0, Spec.Network == null ? Net : null);
                inet.RestoreListening(r.ReadBoolean(), r.ReadBoolean());
                f = inet;
                break;
            }
            default:
                return null;
        }
        f.Flags = flags;
        f.ReceiveTimeoutNs = r.ReadInt64();
        f.SendTimeoutNs = r.ReadInt64();
        return f;
    }
}
