namespace Remus.Sandbox.Net.Tcp;

/// <summary>
/// What a connection received: the in-order bytes the program reads, and out-of-order bytes already written at
/// their place in the same ring (tracked as sequence ranges: the SACK blocks it reports).
/// </summary>
internal sealed class ReceiveBuffer(BufferBudget budget, int capacity)
{
    public ByteRing Ring { get; } = new(budget, capacity);
    public SeqRangeSet OutOfOrder { get; } = new();

    /// <summary>Start of the most recently received out-of-order range (its SACK block goes first, RFC 2018).</summary>
    public uint LastOutOfOrder { get; set; }

    public int Readable => Ring.Count;
    public int Capacity { get => Ring.Capacity; set => Ring.Capacity = value; }

    /// <summary>The free space the window offers.</summary>
    public int Free => Math.Max(0, Ring.Capacity - Ring.Count);

    /// <summary>
    /// Takes the data of a segment starting at <paramref name="seq"/> when the next expected byte is
    /// <paramref name="rcvNxt"/>; returns by how much rcvNxt advances (0: out of order, duplicate or no room).
    /// </summary>
    public int Accept(uint rcvNxt, uint seq, ReadOnlySpan<byte> data)
    {
        if (Seq.Lt(seq, rcvNxt))
        {
            uint d = rcvNxt - seq;
            if (d >= (uint)data.Length) return 0;
            data = data[(int)d..];
            seq = rcvNxt;
        }
        int off = (int)(seq - rcvNxt);
        int room = Ring.Capacity - Ring.Count - off;
        if (room <= 0 || data.Length == 0) return 0;
        if (data.Length > room) data = data[..room];
        if (!Ring.WriteAt(Ring.Count + off, data)) return 0;
        if (off > 0)
        {
            OutOfOrder.Add(seq, seq + (uint)data.Length);
            LastOutOfOrder = seq;
            return 0;
        }
        uint next = rcvNxt + (uint)data.Length;
        OutOfOrder.RemoveBelow(next);
        while (OutOfOrder.Count > 0 && Seq.Le(OutOfOrder[0].Start, next))
        {
            next = Seq.Max(next, OutOfOrder[0].End);
            OutOfOrder.RemoveBelow(next);
        }
        int advance = (int)(next - rcvNxt);
        Ring.Commit(advance);
        return advance;
    }

    /// <summary>Copies (and unless <paramref name="peek"/> consumes) readable bytes.</summary>
    public int Read(Span<byte> dest, bool peek)
    {
        int n = Math.Min(dest.Length, Ring.Count);
        Ring.Peek(0, dest[..n]);
        if (!peek) Ring.Consume(n);
        return n;
    }

    /// <summary>Up to <paramref name="max"/> SACK blocks, the most recent first.</summary>
    public int SackBlocks(ref TcpHeader.SackBlocks blocks, int max)
    {
        int n = 0;
        int first = -1;
        for (int i = 0; i < OutOfOrder.Count; i++)
            if (Seq.InRange(LastOutOfOrder, OutOfOrder[i].Start, OutOfOrder[i].End)) { first = i; break; }
        if (first >= 0 && n < max) { blocks[0] = OutOfOrder[first].Start; blocks[1] = OutOfOrder[first].End; n++; }
        for (int i = 0; i < OutOfOrder.Count && n < max; i++)
        {
            if (i == first) continue;
            blocks[n * 2] = OutOfOrder[i].Start;
            blocks[n * 2 + 1] = OutOfOrder[i].End;
            n++;
        }
        return n;
    }

    /// <summary>Writes readable and out-of-order bytes (relative to <paramref name="rcvNxt"/>).</summary>
    public void Save(BinaryWriter w, uint rcvNxt)
    {
        w.Write(Ring.Capacity);
        w.Write(LastOutOfOrder);
        WriteBytes(w, 0, Ring.Count);
        OutOfOrder.Save(w);
        for (int i = 0; i < OutOfOrder.Count; i++)
            WriteBytes(w, Ring.Count + (int)(OutOfOrder[i].Start - rcvNxt), (int)(OutOfOrder[i].End - OutOfOrder[i].Start));
    }

    public void Load(BinaryReader r, uint rcvNxt)
    {
        Ring.Capacity = r.ReadInt32();
        LastOutOfOrder = r.ReadUInt32();
        var inOrder = r.ReadBytes(r.ReadInt32());
        Ring.Append(inOrder);
        OutOfOrder.Load(r);
        for (int i = 0; i < OutOfOrder.Count; i++)
        {
            var bytes = r.ReadBytes(r.ReadInt32());
            Ring.WriteAt(Ring.Count + (int)(OutOfOrder[i].Start - rcvNxt), bytes);
        }
    }

    private void WriteBytes(BinaryWriter w, int offset, int length)
    {
        w.Write(length);
        if (length == 0) return;
        var tmp = System.Buffers.ArrayPool<byte>.Shared.Rent(length);
        Ring.Peek(offset, tmp.AsSpan(0, length));
        w.Write(tmp, 0, length);
        System.Buffers.ArrayPool<byte>.Shared.Return(tmp);
    }
}
