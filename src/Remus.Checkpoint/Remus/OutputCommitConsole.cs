using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using Remus.Checkpoint.Witness;
using Remus.Sandbox;
using Remus.Sandbox.Net;

namespace Remus.Checkpoint.Remus;

/// <summary>
/// Output commit (DESIGN.md §5) for everything the domain shows the world: its console and its network interface.
/// While the domain is protected, what the program writes and the Ethernet frames its stack sends are held per epoch,
/// in one sequence in the order they were produced, and reach the world (the real console, the tap:
/// <see cref="Wire"/>) only when the backup has acknowledged that epoch, so nothing the outside world saw can be
/// rolled back by a failover. Inbound frames are never delayed (they do not pass here). Each sealed epoch's output
/// also travels in its checkpoint: a backup that takes over re-emits it — console output and frames alike — since it
/// cannot know whether the primary released it, so at most that one epoch's output appears twice (duplicate frames
/// are harmless to TCP) and nothing is ever missing. Unprotected, output passes straight through.
/// <para>
/// <b>The witness gate</b> (issue 12, docs/witness.md): with a <see cref="Lease"/>, nothing reaches the world unless
/// <c>Stopwatch.GetTimestamp() &lt; Lease.ValidUntil</c> at that moment — an acked epoch's release, the release of
/// everything when protection ends, and output passing straight through while unprotected. What cannot go out stays
/// held, in order (never dropped), until <see cref="Flush"/> finds the lease valid again or <see cref="Fence"/>
/// drops it.
/// </para>
/// <para>
/// Held output is kept encoded, as the checkpoint carries it (<c>i32 stream, i32 length, bytes</c>; frames on stream
/// <see cref="FrameStream"/>), in a pooled buffer: holding a frame costs a copy, not an allocation.
/// </para>
/// <para>
/// <b>The bound</b> (issue 11; config key <c>held_output_mib</c>, <see cref="DefaultHeldLimit"/>): held output — the
/// open epoch's and that of sealed epochs not yet released, console and frames, encoded — never exceeds
/// <see cref="HeldLimit"/>, however slow the epochs or the backup's acks, or however long the witness gate stays
/// closed. Console output past it is back-pressure: <see cref="TryWrite"/> takes what fits and the program's write
/// waits (pausable, its progress kept, as a write to a full pipe: ConsoleFile and WaitingIo.cs) until a release makes
/// room; it is never dropped. <see cref="Pressure"/> is set when a write finds no room while the open epoch holds
/// output, so that the epoch loop ends that epoch now rather than at its interval, and its output is released one ack
/// later. A network frame past the bound is dropped instead (counted in <see cref="FramesDroppedOverBound"/>): the
/// stack sends frames from places that cannot wait (its timers, under its lock), and a dropped frame is only packet
/// loss, which every protocol that needs delivery recovers from (TCP retransmits; what TCP has sent stays in its
/// send buffer, which already bounds a connection's frames); UDP is unreliable on any wire. Held frames therefore
/// cannot push the VMM past the bound either, and the guest is never stopped by its own network output.
/// </para>
/// </summary>
public sealed class OutputCommitConsole : IConsole
{
    /// <summary>The stream number of a network frame in an encoded epoch's output (console streams are 0-2).</summary>
    public const int FrameStream = 0x4652; // "FR"

    private const int LatencyWindow = 4096;

    /// <summary>The default bound on held output (16 MiB).</summary>
    public const long DefaultHeldLimit = 16L << 20;

    /// <summary>The smallest bound accepted: one page of output and its header must fit.</summary>
    public const long MinHeldLimit = 64 << 10;

    private readonly IConsole _inner;
    private readonly object _lock = new();
    private readonly Queue<SealedEpoch> _sealed = new();
    private byte[] _open = ArrayPool<byte>.Shared.Rent(64 << 10);
    private int _openLength;
    private List<long> _openFrameTicks = [];
    private bool _holding;
    private bool _fenced;
    private IWitnessLease? _lease;
    private ulong? _releasable; // the highest epoch Release was asked for (acked); held while the lease is not valid
    private readonly long[] _latencyTicks = new long[LatencyWindow];
    private long _framesReleased, _bytesReleased, _framesHeld, _bytesHeld, _framesDropped;
    private long _sealedBytes, _peakHeld, _writesRefused, _framesOverBound;
    private long _heldLimit = DefaultHeldLimit;
    private readonly AutoResetEvent _pressure = new(false);

    public OutputCommitConsole(IConsole inner)
    {
        _inner = inner;
        Frames = new FrameLink(this);
    }

    /// <summary>Where released frames go (the domain's tap, <c>SandboxDomain.NetworkWire</c>); null: dropped.</summary>
    public INetLink? Wire { get; set; }

    /// <summary>The link the domain's stack sends its frames to (<c>SandboxDomain.RouteOutbound</c>): held or passed to <see cref="Wire"/>.</summary>
    public INetLink Frames { get; }

    private sealed record SealedEpoch(ulong Epoch, byte[] Encoded, List<long> FrameTicks);

    private sealed class FrameLink(OutputCommitConsole owner) : INetLink
    {
        public void SendFrame(ReadOnlySpan<byte> frame) => owner.SendFrame(frame);
    }

    public bool IsTerminal => _inner.IsTerminal;

    public int Read(Span<byte> buffer, CancellationToken cancel) => _inner.Read(buffer, cancel);

    public int? PollInput() => _inner.PollInput();

    /// <summary>
    /// Most bytes of output held at once (encoded: 8 bytes of framing per write or frame), at least
    /// <see cref="MinHeldLimit"/>; <see cref="DefaultHeldLimit"/> unless the domain's config says otherwise.
    /// </summary>
    public long HeldLimit
    {
        get { lock (_lock) return _heldLimit; }
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, MinHeldLimit);
            lock (_lock) _heldLimit = value;
        }
    }

    /// <summary>Set when a console write found no room while the open epoch holds output: end the epoch early.</summary>
    public WaitHandle Pressure => _pressure;

    /// <summary>The most output ever held at once (bytes, encoded), for tests and statistics.</summary>
    public long PeakHeldBytes
    {
        get { lock (_lock) return _peakHeld; }
    }

    /// <summary>How many console writes were refused in whole or part for want of room (the program waited).</summary>
    public long WritesHeldBack
    {
        get { lock (_lock) return _writesRefused; }
    }

    /// <summary>Frames dropped because holding them would have passed <see cref="HeldLimit"/> (packet loss).</summary>
    public long FramesDroppedOverBound
    {
        get { lock (_lock) return _framesOverBound; }
    }

    /// <summary>Whole output, unbounded: for callers that cannot wait. The program's writes use <see cref="TryWrite"/>.</summary>
    public void Write(int stream, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            if (_fenced) return;
            if (_holding || MustHold) Append(stream, data);
            else _inner.Write(stream, data);
        }
    }

    /// <summary>
    /// Takes what fits under <see cref="HeldLimit"/> while output is held (everything when it passes straight
    /// through, or is fenced and dropped); 0 when nothing fits: the program's write waits for a release.
    /// </summary>
    public int TryWrite(int stream, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            if (_fenced) return data.Length;
            if (!_holding && !MustHold)
            {
                _inner.Write(stream, data);
                return data.Length;
            }
            long room = _heldLimit - HeldNow - 8;
            int n = (int)Math.Clamp(room, 0, data.Length);
            if (n > 0) Append(stream, data[..n]);
            if (n < data.Length)
            {
                _writesRefused++;
                if (_openLength > 0) _pressure.Set();
            }
            return n;
        }
    }

    /// <summary>Whether <see cref="TryWrite"/> would take something now.</summary>
    public bool CanWrite
    {
        get
        {
            lock (_lock) return _fenced || !_holding && !MustHold || _heldLimit - HeldNow - 8 > 0;
        }
    }

    /// <summary>Under the lock: bytes held now (open epoch and sealed epochs not released).</summary>
    private long HeldNow => _openLength + _sealedBytes;

    /// <summary>An outbound frame of the domain: held while protected, else straight to <see cref="Wire"/>.</summary>
    public void SendFrame(ReadOnlySpan<byte> frame)
    {
        lock (_lock)
        {
            if (_fenced)
            {
                _framesDropped++;
                return;
            }
            if (!_holding && !MustHold)
            {
                Wire?.SendFrame(frame);
                return;
            }
            if (HeldNow + 8 + frame.Length > _heldLimit)
            {
                _framesOverBound++; // packet loss, not growth: see the class summary
                return;
            }
            Append(FrameStream, frame);
            _openFrameTicks.Add(Stopwatch.GetTimestamp());
            _framesHeld++;
            _bytesHeld += frame.Length;
        }
    }

    private void Append(int stream, ReadOnlySpan<byte> data)
    {
        int need = _openLength + 8 + data.Length;
        if (need > _open.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(need, 2 * _open.Length));
            _open.AsSpan(0, _openLength).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_open);
            _open = bigger;
        }
        BinaryPrimitives.WriteInt32LittleEndian(_open.AsSpan(_openLength), stream);
        BinaryPrimitives.WriteInt32LittleEndian(_open.AsSpan(_openLength + 4), data.Length);
        data.CopyTo(_open.AsSpan(_openLength + 8));
        _openLength = need;
        if (HeldNow > _peakHeld) _peakHeld = HeldNow;
    }

    /// <summary>Bytes held and not yet released, console output and frames (for statistics).</summary>
    public long HeldBytes
    {
        get
        {
            lock (_lock) return HeldNow;
        }
    }

    /// <summary>The network side of output commit so far (for `remus list --json`).</summary>
    public NetOutputStats NetStats
    {
        get
        {
            lock (_lock)
            {
                int n = (int)Math.Min(_framesReleased, LatencyWindow);
                double p50 = 0, p99 = 0;
                if (n > 0)
                {
                    var sorted = _latencyTicks.AsSpan(0, n).ToArray();
                    Array.Sort(sorted);
                    p50 = sorted[n / 2] * 1000.0 / Stopwatch.Frequency;
                    p99 = sorted[Math.Min(n - 1, (int)(n * 0.99))] * 1000.0 / Stopwatch.Frequency;
                }
                return new NetOutputStats(_framesHeld, _bytesHeld, _framesReleased, _bytesReleased, _framesDropped, p50, p99)
                {
                    FramesOverBound = _framesOverBound,
                };
            }
        }
    }

    /// <summary>
    /// The witness lease that gates every release (null: none). Setting null lets out whatever the gate held, unless
    /// fenced; the caller does so only when the world may see it (protection stopped with the lease valid).
    /// </summary>
    public IWitnessLease? Lease
    {
        get { lock (_lock) return _lease; }
        set
        {
            lock (_lock)
            {
                _lease = value;
                FlushCore();
            }
        }
    }

    /// <summary>Under the lock: whether the world may see output now (no lease, or the lease certainly valid).</summary>
    private bool LeaseValid => _lease == null || Stopwatch.GetTimestamp() < _lease.ValidUntil;

    /// <summary>Under the lock, unprotected: output must be held (the gate is closed, or held output is still ahead of it).</summary>
    private bool MustHold => _lease != null && (_sealed.Count > 0 || _openLength > 0 || !LeaseValid);

    /// <summary>Whether output is waiting for the witness lease (acked or unprotected output the gate held).</summary>
    public bool HeldByLease
    {
        get { lock (_lock) return !_fenced && (_sealed.Count > 0 && (!_holding || _sealed.Peek().Epoch <= _releasable) || !_holding && _openLength > 0); }
    }

    /// <summary>From now on output is held until released.</summary>
    public void StartHolding()
    {
        lock (_lock)
        {
            _holding = true;
            if (_sealed.Count == 0) _releasable = null; // a new protection numbers its epochs afresh
        }
    }

    /// <summary>
    /// Lets out what the witness gate held, if the lease is valid now: the acked epochs (those <see cref="Release"/>
    /// was asked for) and, unprotected, everything. False if the gate is still closed (or fenced).
    /// </summary>
    public bool Flush()
    {
        lock (_lock) return FlushCore();
    }

    private bool FlushCore()
    {
        if (_fenced || !LeaseValid) return false;
        while (_sealed.Count > 0 && (!_holding || _sealed.Peek().Epoch <= _releasable))
        {
            var e = _sealed.Dequeue();
            _sealedBytes -= e.Encoded.Length;
            Emit(e.Encoded, e.FrameTicks);
        }
        if (!_holding && _openLength > 0)
        {
            Emit(_open.AsSpan(0, _openLength), _openFrameTicks);
            _openLength = 0;
            _openFrameTicks = [];
        }
        return true;
    }

    /// <summary>Closes the output of epoch <paramref name="epoch"/> (everything written since the previous seal) and returns it encoded.</summary>
    public byte[] SealEpoch(ulong epoch)
    {
        lock (_lock)
        {
            var encoded = _open.AsSpan(0, _openLength).ToArray();
            _openLength = 0;
            var ticks = _openFrameTicks;
            _openFrameTicks = ticks.Count == 0 ? ticks : [];
            _sealed.Enqueue(new SealedEpoch(epoch, encoded, ticks.Count == 0 ? [] : ticks));
            _sealedBytes += encoded.Length;
            return encoded;
        }
    }

    /// <summary>
    /// Releases the output of every sealed epoch up to and including <paramref name="epoch"/> — at once if the witness
    /// lease is valid (or there is none), else when <see cref="Flush"/> finds it valid. False if it stays held.
    /// </summary>
    public bool Release(ulong epoch)
    {
        lock (_lock)
        {
            if (_fenced) return false;
            if (_releasable is not { } r || r < epoch) _releasable = epoch;
            if (!LeaseValid) return false;
            while (_sealed.Count > 0 && _sealed.Peek().Epoch <= epoch)
            {
                var e = _sealed.Dequeue();
                _sealedBytes -= e.Encoded.Length;
                Emit(e.Encoded, e.FrameTicks);
            }
            return true;
        }
    }

    /// <summary>
    /// Releases everything held (sealed and open) and passes output straight through again; with a witness lease
    /// that is not valid now, all of it stays held (and so does what follows) until <see cref="Flush"/>.
    /// </summary>
    public void StopHolding()
    {
        lock (_lock)
        {
            if (_fenced) return;
            if (!LeaseValid)
            {
                _holding = false;
                return;
            }
            while (_sealed.Count > 0)
            {
                var e = _sealed.Dequeue();
                _sealedBytes -= e.Encoded.Length;
                Emit(e.Encoded, e.FrameTicks);
            }
            Emit(_open.AsSpan(0, _openLength), _openFrameTicks);
            _openLength = 0;
            _openFrameTicks = [];
            _holding = false;
        }
    }

    /// <summary>Under the lock: the world sees one epoch's output, in order; frames count their time held.</summary>
    private void Emit(ReadOnlySpan<byte> encoded, List<long> frameTicks)
    {
        long now = Stopwatch.GetTimestamp();
        int frame = 0;
        Decode(encoded, (stream, data) =>
        {
            if (stream != FrameStream)
            {
                _inner.Write(stream, data);
                return;
            }
            Wire?.SendFrame(data);
            if (frame < frameTicks.Count) _latencyTicks[_framesReleased % LatencyWindow] = now - frameTicks[frame];
            frame++;
            _framesReleased++;
            _bytesReleased += data.Length;
            _framesHeld--;
            _bytesHeld -= data.Length;
        });
    }

    /// <summary>
    /// The backup took over: everything held is dropped, never released, and so is everything written or sent from
    /// now on (this copy is stopping; the backup's copy is the one the world sees).
    /// </summary>
    public void Fence()
    {
        lock (_lock)
        {
            _fenced = true;
            _framesDropped += _framesHeld;
            _framesHeld = 0;
            _bytesHeld = 0;
            _openLength = 0;
            _openFrameTicks = [];
            _sealed.Clear();
            _sealedBytes = 0;
        }
    }

    /// <summary>Whether <see cref="Fence"/> was called.</summary>
    public bool IsFenced
    {
        get { lock (_lock) return _fenced; }
    }

    /// <summary>Checks the framing of an encoded epoch's output without writing it (a backup validates before applying).</summary>
    public static void Validate(ReadOnlySpan<byte> encoded) => Decode(encoded, static (_, _) => { });

    /// <summary>Writes an encoded epoch's console output to <paramref name="console"/>; its frames are dropped.</summary>
    public static void Replay(IConsole console, ReadOnlySpan<byte> encoded) => Replay(console, null, encoded);

    /// <summary>
    /// Re-emits an encoded epoch's output (the backup's at failover): console output to <paramref name="console"/>,
    /// frames to <paramref name="wire"/> (null: dropped), in their order.
    /// </summary>
    public static void Replay(IConsole console, INetLink? wire, ReadOnlySpan<byte> encoded) =>
        Decode(encoded, (stream, data) =>
        {
            if (stream == FrameStream) wire?.SendFrame(data);
            else console.Write(stream, data);
        });

    /// <summary>How many frames an encoded epoch's output holds (for tests and logs).</summary>
    public static int CountFrames(ReadOnlySpan<byte> encoded)
    {
        int n = 0;
        Decode(encoded, (stream, _) => { if (stream == FrameStream) n++; });
        return n;
    }

    private delegate void ChunkAction(int stream, ReadOnlySpan<byte> data);

    private static void Decode(ReadOnlySpan<byte> encoded, ChunkAction action)
    {
        if (encoded.Length is > 0 and < 8) throw new InvalidDataException("corrupt console output in the checkpoint");
        while (encoded.Length >= 8)
        {
            int stream = BinaryPrimitives.ReadInt32LittleEndian(encoded);
            int length = BinaryPrimitives.ReadInt32LittleEndian(encoded[4..]);
            if (length < 0 || length > encoded.Length - 8) throw new InvalidDataException("corrupt console output in the checkpoint");
            action(stream, encoded.Slice(8, length));
            encoded = encoded[(8 + length)..];
            if (encoded.Length is > 0 and < 8) throw new InvalidDataException("corrupt console output in the checkpoint");
        }
    }
}

/// <summary>
/// The network side of output commit: frames and bytes held now, released so far, dropped (fenced; past the bound:
/// <see cref="FramesOverBound"/>), and the time
/// released frames were held (from the stack sending them to their release), p50 and p99 over the last 4096.
/// </summary>
public sealed record NetOutputStats(
    long FramesHeld, long BytesHeld, long FramesReleased, long BytesReleased, long FramesDropped, double LatencyP50Ms, double LatencyP99Ms)
{
    /// <summary>Frames dropped because holding them would have passed the bound on held output (packet loss).</summary>
    public long FramesOverBound { get; init; }
}
