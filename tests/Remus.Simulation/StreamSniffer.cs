using System.Buffers.Binary;
using Remus.Checkpoint.Stream;

namespace Remus.Simulation;

/// <summary>
/// Follows the framing of a checkpoint stream as it is written (header, then records of type, length — and in version 2 a check —, body and
/// padding), without judging it: where each record starts, and where each epoch starts (after the header and after
/// each CHECKPOINT_END). Record types it does not know are framed the same way, so new protocol records pass.
/// </summary>
public sealed class StreamSniffer
{
    /// <summary>
    /// A record starts at <paramref name="Position"/> (its body <paramref name="Length"/> bytes after a header of
    /// <paramref name="HeaderSize"/> bytes: 8 in a version 1 stream and on the back channel, 16 in a version 2 stream);
    /// <paramref name="Ordinal"/> counts the earlier records of its type.
    /// </summary>
    public readonly record struct Event(long Position, RecordType Type, ulong Epoch, bool EpochStart, long Ordinal, uint Length, int HeaderSize);

    private readonly byte[] _collect = new byte[StreamFormat.HeaderFixedSize];
    private int _collected;
    private int _need; // bytes to collect before the next decision
    private long _skip; // body bytes to pass over
    private readonly Dictionary<RecordType, long> _ordinals = [];
    private bool _inHeader, _epochStartPending = true;
    private RecordType _current;
    private long _position, _recordStart;
    private int _recordHeaderSize = StreamFormat.RecordHeaderSize;

    /// <param name="withHeader">the stream starts with a stream header (the checkpoint stream; not the back channel)</param>
    public StreamSniffer(bool withHeader = true)
    {
        _inHeader = withHeader;
        _need = withHeader ? StreamFormat.HeaderFixedSize : StreamFormat.RecordHeaderSize;
    }

    /// <summary>Epochs completed (CHECKPOINT_END records seen): the number of the epoch now being written.</summary>
    public ulong Epoch { get; private set; }

    /// <summary>Stream bytes seen.</summary>
    public long Position => _position;

    /// <summary>
    /// Follows <paramref name="data"/>; adds each record whose header it completes, at the position of its first
    /// byte (which may lie in an earlier write when a header was split).
    /// </summary>
    public void Feed(ReadOnlySpan<byte> data, List<Event> events)
    {
        int i = 0;
        while (i < data.Length)
        {
            if (_skip > 0)
            {
                int n = (int)Math.Min(_skip, data.Length - i);
                _skip -= n;
                i += n;
                _position += n;
                if (_skip == 0) EndOfElement();
                continue;
            }
            if (_collected == 0) _recordStart = _position;
            int take = Math.Min(_need - _collected, data.Length - i);
            data.Slice(i, take).CopyTo(_collect.AsSpan(_collected));
            _collected += take;
            i += take;
            _position += take;
            if (_collected < _need) break;
            _collected = 0;
            if (_inHeader)
            {
                uint configLength = BinaryPrimitives.ReadUInt32LittleEndian(_collect.AsSpan(24));
                _skip = configLength + StreamFormat.PaddingFor(configLength) + sizeof(ulong);
                uint version = BinaryPrimitives.ReadUInt32LittleEndian(_collect.AsSpan(8));
                _recordHeaderSize = version >= 2 ? StreamFormat.CheckedRecordHeaderSize : StreamFormat.RecordHeaderSize;
                _need = _recordHeaderSize;
            }
            else
            {
                _current = (RecordType)BinaryPrimitives.ReadUInt32LittleEndian(_collect);
                uint length = BinaryPrimitives.ReadUInt32LittleEndian(_collect.AsSpan(4));
                long ordinal = _ordinals.GetValueOrDefault(_current);
                _ordinals[_current] = ordinal + 1;
                events.Add(new Event(_recordStart, _current, Epoch, _epochStartPending, ordinal, length, _recordHeaderSize));
                _epochStartPending = false;
                _skip = length + StreamFormat.PaddingFor(length);
                if (_skip == 0) EndOfElement();
            }
        }
    }

    private void EndOfElement()
    {
        if (_inHeader) { _inHeader = false; return; }
        if (_current == RecordType.CheckpointEnd)
        {
            Epoch++;
            _epochStartPending = true;
        }
    }
}
