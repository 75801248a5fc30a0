using System.Buffers.Binary;

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
/// sockets and copies the cached record (id, length, state) of the others, one memcpy each; Load reads the bytes,
/// hands them to the socket to restore from, and keeps them as a clean cache. UDP also keeps its whole section, so a
/// checkpoint where no UDP socket changed is one copy (a layer-wide dirty flag set with every socket's). A missed MarkDirty shows as a checkpoint that
/// differs from a full re-serialization: NetStack.Save(w, full: true) writes one to compare against in tests.
/// </summary>
internal sealed class SnapshotCache
{
    private byte[] _bytes = [];

    public bool Dirty { get; private set; } = true;

    public void MarkDirty() => Dirty = true;

    /// <summary>
    /// Writes <paramref name="id"/>, then the state (length-prefixed), re-serializing it only when dirty or
    /// <paramref name="full"/>. The cache holds the whole record, so a clean one is a single copy.
    /// </summary>
    public void Write(Stream w, int id, ISnapshotState state, SnapshotScratch scratch, bool full)
    {
        if (Dirty || full)
        {
            _bytes = scratch.Serialize(id, state);
            Dirty = false;
        }
        w.Write(_bytes);
    }

    /// <summary>Reads what <see cref="Write"/> wrote after the id (which the caller read); the record becomes the (clean) cache.</summary>
    public BinaryReader Read(BinaryReader r, int id, int maxLength)
    {
        int n = r.ReadInt32();
        if (n < 0 || n > maxLength) throw new InvalidDataException($"stack snapshot: socket state of {n} bytes");
        _bytes = new byte[8 + n];
        BinaryPrimitives.WriteInt32LittleEndian(_bytes, id);
        BinaryPrimitives.WriteInt32LittleEndian(_bytes.AsSpan(4), n);
        r.BaseStream.ReadExactly(_bytes, 8, n);
        Dirty = false;
        return new Kernel.SnapshotReader(_bytes, 8, n);
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

    /// <summary>The record <see cref="SnapshotCache.Write"/> keeps: id, length, state.</summary>
    public byte[] Serialize(int id, ISnapshotState state)
    {
        _ms.SetLength(0);
        _w.Write(id);
        _w.Write(0);
        state.SaveState(_w);
        _w.Flush();
        var bytes = _ms.ToArray();
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), bytes.Length - 8);
        return bytes;
    }
}
