using System.Diagnostics;
using Remus.Checkpoint.Remus;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// The backup's failure detector, on a clock the test drives: only time the reader spends blocked counts as the
/// primary's silence, and a stall of the backup itself (a jump of the clock between two looks) does not.
/// </summary>
public class SilenceWatchTests
{
    private static readonly TimeSpan T = TimeSpan.FromSeconds(1);

    /// <summary>A stream whose reads block until bytes are given.</summary>
    private sealed class Trickle : Remus.Checkpoint.Stream.ReadOnlyStream
    {
        private readonly SemaphoreSlim _bytes = new(0);
        public void Give() => _bytes.Release();
        public override int Read(Span<byte> buffer)
        {
            _bytes.Wait();
            buffer[0] = 1;
            return 1;
        }
        protected override void Dispose(bool disposing) { if (disposing) _bytes.Release(1000); }
    }

    private static long Ticks(TimeSpan t) => (long)(t.TotalSeconds * Stopwatch.Frequency);

    private static (SilenceWatch Watch, Trickle Source, Func<bool> Fired, Thread Reader) Start()
    {
        var source = new Trickle();
        bool fired = false;
        var watch = new SilenceWatch(source, T, () => fired = true, clock: true) { LastTick = 0 };
        var reader = new Thread(() => { try { var b = new byte[1]; while (watch.Read(b, 0, 1) > 0) { } } catch (ObjectDisposedException) { } }) { IsBackground = true };
        reader.Start();
        Thread.Sleep(50); // the reader is now blocked in Read
        return (watch, source, () => fired, reader);
    }

    [Fact]
    public void A_reader_blocked_for_the_timeout_declares_the_primary_silent()
    {
        var (watch, _, fired, _) = Start();
        long tick = Ticks(SilenceWatch.TickPeriod(T)), now = 0;
        while (now < Ticks(T) - tick) { watch.Tick(now += tick); Assert.False(fired()); }
        watch.Tick(now += tick);
        watch.Tick(now += tick);
        Assert.True(fired());
    }

    [Fact]
    public void A_stall_of_the_backup_itself_is_not_silence()
    {
        var (watch, _, fired, _) = Start();
        long tick = Ticks(SilenceWatch.TickPeriod(T)), now = 0;
        watch.Tick(now += tick);
        watch.Tick(now += Ticks(TimeSpan.FromSeconds(3))); // SIGSTOPped for three timeouts, then continued
        Assert.False(fired()); // before the fix (wall time since the last byte): the primary was declared lost here
        watch.Tick(now += tick);
        Assert.False(fired());
    }

    [Fact]
    public void Bytes_arriving_reset_the_count()
    {
        var (watch, source, fired, _) = Start();
        long tick = Ticks(SilenceWatch.TickPeriod(T)), now = 0;
        for (int round = 0; round < 5; round++)
        {
            while (now < (round + 1) * Ticks(T) * 3 / 4) watch.Tick(now += tick);
            source.Give();
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (watch.Reads < round + 1 && DateTime.UtcNow < deadline) Thread.Sleep(1); // the reader takes the byte
            watch.Tick(now += tick);
        }
        Assert.False(fired());
    }
}
