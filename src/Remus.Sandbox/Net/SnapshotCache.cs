namespace Remus.Sandbox.Net;

/// <summary>Something whose state a <see cref="SnapshotCache"/> serializes.</summary>
internal interface ISnapshotState
{
    void SaveState(BinaryWriter w);
}

/// <summary>
/// How the stack keeps a checkpoint's cost proportional to what changed, not to idle sockets (the pattern UDP uses;
/// TCP can follow it): each socket owns a SnapshotCache holding its last serialized bytes and a dirty flag. EVERY
/// change to state the socket saves calls <see cref="MarkDirty"/> (new socket: dirty). Save re-serializes only dirty
/// sockets and copies the cached bytes of the others (a length and a memcpy each); Load reads the bytes, hands them
/// to the socket to restore from, and keeps them as a clean cache. A missed MarkDirty shows as a checkpoint that
/// differs from a full re-serialization: NetStack.Save(w, full: true) writes one to compare against in tests.
/// </summary>
internal sealed class SnapshotCache
{
    private byte[] _bytes = [];

    public bool Dirty { get; private set; } = true;

    public void MarkDirty() => Dirty = true;

    /// <summary>Writes the state (length-prefixed), re-serializing it only when dirty or <paramref name="full"/>.</summary>
    public void Write(BinaryWriter w, ISnapshotState state, SnapshotScratch scratch, bool full)
    {
        if (Dirty || full)
        {
            _bytes = scratch.Serialize(state);
            Dirty = false;
        }
        w.Write(_bytes.Length);
        w.Write(_bytes);
    }

    /// <summary>Reads what <see cref="Write"/> wrote; the bytes become the (clean) cache.</summary>
    public BinaryReader Read(BinaryReader r, int maxLength)
    {
        int n = r.ReadInt32();
        if (n < 0 || n > maxLength) throw new InvalidDataException($"stack snapshot: socket state of {n} bytes");
        _bytes = r.ReadBytes(n);
        if (_bytes.Length != n) throw new EndOfStreamException();
        Dirty = false;
        return new BinaryReader(new MemoryStream(_bytes, writable: false));
    }
}

/// <summary>One reused stream to serialize dirty sockets into (per stack: stacks of different domains save concurrently).</summary>
internal sealed class SnapshotScratch
{
    private readonly MemoryStream _ms = new();
    private readonly BinaryWriter _w;

    public SnapshotScratch() => _w = new BinaryWriter(_ms);

    public byte[] Serialize(ISnapshotState state)
    {
        _ms.SetLength(0);
        state.SaveState(_w);
        _w.Flush();
        return _ms.ToArray();
    }
}
