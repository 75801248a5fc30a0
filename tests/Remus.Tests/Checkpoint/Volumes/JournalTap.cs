namespace Remus.Tests.Checkpoint.Volumes;

/// <summary>
/// The primary's forward direction, with a fault at the n-th journal body of <see cref="FakeVolumeReplica"/> that
/// goes through (a writer hands each record body over in one write): <see cref="Corrupt"/> flips one byte of it
/// (the epoch's checksum no longer matches), <see cref="Cut"/> lets half of it through and then nothing more (the
/// link is cut in the middle of the epoch: the backup hears silence; the primary's writes still "succeed").
/// </summary>
public sealed class JournalTap(System.IO.Stream inner, int nth, JournalTap.Fault fault) : System.IO.Stream
{
    public enum Fault { Corrupt, Cut }

    private int _journalBodies;
    private volatile bool _cut;

    /// <summary>The sequence number of the body the fault hit, once it did.</summary>
    public uint? HitSequence { get; private set; }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (_cut) return;
        if (FakeVolumeReplica.IsBody(buffer) && FakeVolumeReplica.KindOf(buffer) == 2 && ++_journalBodies == nth)
        {
            HitSequence = FakeVolumeReplica.SequenceOf(buffer);
            if (fault == Fault.Corrupt)
            {
                byte[] copy = buffer.ToArray();
                copy[^1] ^= 0x10;
                inner.Write(copy);
                return;
            }
            inner.Write(buffer[..(buffer.Length / 2)]);
            inner.Flush();
            _cut = true;
            return;
        }
        inner.Write(buffer);
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
    public override void Flush()
    {
        if (!_cut) inner.Flush();
    }
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
