using System.Buffers.Binary;

namespace Remus.Soak.Rounds;

/// <summary>
/// Follows the record framing of one direction of a Remus channel as its bytes pass through the harness's relay,
/// without buffering them, to tell when a record of interest has gone through (docs/stream-format.md §3-§4):
/// the forward stream is a header (40 + config + padding bytes) then 16-byte frames; the back channel has no header
/// and 8-byte frames. Bodies are skipped, never read.
/// </summary>
internal sealed class FrameScanner(bool forward)
{
    private readonly byte[] _head = new byte[32];
    private int _headHave;
    private long _skip;
    private bool _headerDone = !forward;
    private readonly int _frame = forward ? 16 : 8;

    /// <summary>Record types whose frame passed, in order; each is reported once its whole record has passed.</summary>
    public event Action<int>? Record;

    private int _pendingType = -1;

    public void Feed(ReadOnlySpan<byte> data)
    {
        while (data.Length > 0)
        {
            if (_skip > 0)
            {
                int n = (int)Math.Min(_skip, data.Length);
                _skip -= n;
                data = data[n..];
                if (_skip == 0) Complete();
                continue;
            }
            int want = _headerDone ? _frame : 32;
            int take = Math.Min(want - _headHave, data.Length);
            data[..take].CopyTo(_head.AsSpan(_headHave));
            _headHave += take;
            data = data[take..];
            if (_headHave < want) return;
            _headHave = 0;
            if (!_headerDone)
            {
                // magic, version, page size, architecture, flags, config length, reserved; then config, padding, checksum
                uint config = BinaryPrimitives.ReadUInt32LittleEndian(_head.AsSpan(24));
                _skip = Pad8(config) + 8;
                _headerDone = true;
                _pendingType = -1;
                continue;
            }
            int type = (int)BinaryPrimitives.ReadUInt32LittleEndian(_head);
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(_head.AsSpan(4));
            _pendingType = type;
            _skip = Pad8(length);
            if (_skip == 0) Complete();
        }
    }

    private void Complete()
    {
        if (_pendingType < 0) return;
        int type = _pendingType;
        _pendingType = -1;
        Record?.Invoke(type);
    }

    private static long Pad8(uint n) => (n + 7L) & ~7L;
}
