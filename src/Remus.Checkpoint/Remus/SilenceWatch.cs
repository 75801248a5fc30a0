using System.Diagnostics;
using Remus.Checkpoint.Stream;

namespace Remus.Checkpoint.Remus;

/// <summary>
/// The backup's failure detector: a read-through wrapper of the primary's stream that declares the primary silent
/// once the reader has been <b>blocked waiting for bytes</b> for the timeout T, and closes the stream to unblock it.
/// <para>
/// Only time spent inside a read counts, and only time this process was seen to run: a gap of more than T/4 between
/// two ticks counts as one tick. So the time the backup spends applying a large round, or the time
/// it is stopped (SIGSTOP, a long GC pause, a starved host), is never counted as the primary's silence: after such a
/// stall the reader first gets what the primary wrote meanwhile (epochs, heartbeats, a RELEASE), and the primary is
/// declared lost only if, after that, reads still find nothing for T. This is what lets the primary bound its lease
/// by T: the backup cannot take over earlier than T after the last byte it consumed.
/// </para>
/// </summary>
internal sealed class SilenceWatch : ReadOnlyStream
{
    private readonly System.IO.Stream _inner;
    private readonly long _limit, _tick, _maxGap;
    private readonly Func<bool> _onSilence;
    private readonly Timer _timer;
    private long _lastTick = Stopwatch.GetTimestamp();

    /// <summary>Tests only: where the clock starts.</summary>
    internal long LastTick { set => _lastTick = value; }
    private long _silent;
    private long _reads, _seenReads;
    private volatile bool _inRead;
    private int _fired;

    /// <param name="onSilence">called once when the primary is declared silent; returns false to veto (the primary's
    /// RELEASE was read meanwhile), true to close the stream</param>
    /// <param name="clock">tests only: no timer; the caller calls <see cref="Tick(long)"/> with its own timestamps</param>
    public SilenceWatch(System.IO.Stream inner, TimeSpan timeout, Func<bool> onSilence, bool clock = false)
    {
        _inner = inner;
        _onSilence = onSilence;
        _tick = (long)(TickPeriod(timeout).TotalSeconds * Stopwatch.Frequency);
        _limit = (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        _maxGap = Math.Max(_limit / 4, 2 * _tick);
        _timer = clock ? new Timer(_ => { }) : new Timer(_ => Tick(), null, TickPeriod(timeout), TickPeriod(timeout));
    }

    /// <summary>How often the detector looks: T/20, between 2 and 50 ms.</summary>
    public static TimeSpan TickPeriod(TimeSpan timeout) =>
        TimeSpan.FromTicks(Math.Clamp(timeout.Ticks / 20, TimeSpan.FromMilliseconds(2).Ticks, TimeSpan.FromMilliseconds(50).Ticks));

    /// <summary>Reads that returned bytes so far.</summary>
    internal long Reads => Interlocked.Read(ref _reads);

    /// <summary>Whether the primary was declared silent.</summary>
    public bool Fired => Volatile.Read(ref _fired) == 1;

    private void Tick() => Tick(Stopwatch.GetTimestamp());

    /// <summary>One look at the reader, at time <paramref name="now"/> (Stopwatch ticks).</summary>
    internal void Tick(long now)
    {
        if (!Monitor.TryEnter(_timer)) return; // the previous tick still runs
        try { TickCore(now); }
        finally { Monitor.Exit(_timer); }
    }

    private void TickCore(long now)
    {
        long elapsed = now - Interlocked.Exchange(ref _lastTick, now);
        long reads = Interlocked.Read(ref _reads);
        if (!_inRead || reads != _seenReads)
        {
            _seenReads = reads;
            _silent = 0;
            return;
        }
        // A gap between two looks longer than T/4 is a stall of this process (stopped, starved), not the primary's
        // silence: it counts as one tick. Shorter late looks count in full, so that a loaded but running backup
        // still declares a silent primary lost about T after its last byte (the primary's wait for TAKEOVER after
        // RELEASE, T + margin, counts on that).
        _silent += elapsed <= _maxGap ? elapsed : _tick;
        if (_silent < _limit || Interlocked.CompareExchange(ref _fired, 1, 0) != 0) return;
        if (_onSilence()) Unblock();
        else _silent = 0;
    }

    /// <summary>
    /// Ends the blocked read. A socket is shut down for receiving only: it usually carries the back channel too, on
    /// which TAKEOVER must still go out. Any other stream is closed.
    /// </summary>
    private void Unblock()
    {
        try
        {
            if (_inner is System.Net.Sockets.NetworkStream { Socket: { } socket }) socket.Shutdown(System.Net.Sockets.SocketShutdown.Receive);
            else _inner.Dispose();
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or ObjectDisposedException or IOException)
        {
            _inner.Dispose();
        }
    }

    public override int Read(Span<byte> buffer)
    {
        _inRead = true;
        try
        {
            int n = _inner.Read(buffer);
            if (n > 0) Interlocked.Increment(ref _reads);
            return n;
        }
        finally
        {
            _inRead = false;
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _timer.Dispose();
        base.Dispose(disposing);
    }

}
