using Remus.Checkpoint.Migration;
using Remus.Checkpoint.Remus;
using Remus.Checkpoint.Stream;
using Remus.Sandbox;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// Issue 14 item 4: a pre-copy round larger than the epoch bound travels as several epochs, each applied and acked on
/// its own, and the receiver ends with the sender's memory (migration and a Remus initial synchronisation); a backup
/// with a short timeout does not give up on a primary whose initial synchronisation is long because reading its
/// memory is slow.
/// </summary>
public class SyncEpochsTests
{
    private static readonly byte[] Config = "{\"name\":\"s\"}"u8.ToArray();

    [Fact]
    public void A_migration_round_larger_than_the_epoch_bound_travels_as_several_epochs_and_the_memory_arrives_whole()
    {
        var source = new MemoryDomain(1200, seed: 1) { ChangesAtHarvest = [300, 100] };
        MemoryDomain? target = null;
        var (a, b) = Channel.Pair();
        var tee = new TeeReader(b);
        var receiver = new MigrationReceiver(tee, b);
        var arrive = Task.Run(() => target = receiver.Receive(_ => new MemoryDomain(1200, seed: 0)));
        var sender = new MigrationSender(source, a, a, new MigrationOptions { EpochPages = 100, StopCopyPages = 0, MaxRounds = 3 });
        var progress = new List<MigrationProgress>();
        sender.Progress += progress.Add;
        var result = Task.Run(() => sender.Migrate(Config));
        arrive.Wait(TimeSpan.FromSeconds(30));
        if (arrive.IsFaulted) throw arrive.Exception!;
        receiver.ConfirmRunning();
        var r = result.Result;

        Assert.Equal(source.Memory, target!.Memory);
        Assert.Equal(1, target.Loads);
        Assert.Equal(4, r.Rounds); // three pre-copy rounds (MaxRounds) and the stop-and-copy
        // Round 0 is every populated page (1199 program pages): 12 epochs of at most 100 pages, reported one by one.
        var epochs = Epochs(tee.Bytes);
        Assert.All(epochs, e => Assert.True(e.Pages <= 100, $"epoch {e.Number} carries {e.Pages} pages"));
        Assert.Equal(Enumerable.Range(0, epochs.Count).Select(i => (ulong)i), epochs.Select(e => e.Number));
        Assert.True(epochs.Count >= 12 + 3 + 1 + 1, $"{epochs.Count} epochs");
        Assert.Equal(11, progress.Count(p => p.Round == 0 && p.Partial));
        Assert.Equal([100L, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100],
            progress.Where(p => p.Round == 0 && p.Partial).Select(p => p.RoundPagesSent));
        Assert.Equal(1199, progress.Single(p => p.Round == 0 && !p.Partial).PagesThisRound);
    }

    [Fact]
    public void A_remus_initial_sync_larger_than_the_epoch_bound_is_acked_epoch_by_epoch_and_the_backup_holds_the_memory()
    {
        var domain = new MemoryDomain(1200, seed: 2) { ChangesAtHarvest = [250] };
        var (primary, backup, watch, built) = Protect(domain, new RemusOptions
        {
            Interval = TimeSpan.FromMilliseconds(20), Timeout = TimeSpan.FromSeconds(1), SyncEpochPages = 100, HotPageEpochs = 0,
        });
        using (primary)
        {
            Assert.True(primary.IsProtected);
            Assert.True(SpinWait.SpinUntil(() => backup.Checkpoints >= 2, TimeSpan.FromSeconds(30)));
        }
        Assert.Equal(BackupOutcome.Ended, watch.Wait(TimeSpan.FromSeconds(30)) ? watch.Result : throw new TimeoutException());
        Assert.Equal(domain.Memory, built()!.Memory);
    }

    /// <summary>
    /// The primary reads its memory slowly (~1 ms a page: a huge or starved domain), so one PAGE_DATA record (512
    /// pages) takes ~0.5 s to produce, more than twice the backup's timeout of 200 ms, and the copy ~2 s. Before the
    /// fix the whole round was written under the writer lock: no byte and no heartbeat for longer than T, and the
    /// backup gave up ("no checkpoint or heartbeat from the primary") before the first checkpoint. Now the copy beats
    /// from inside the epoch when no byte went out for T/4, and the backup stays.
    /// </summary>
    [Fact]
    public void A_backup_with_a_short_timeout_does_not_give_up_during_a_long_initial_sync()
    {
        var domain = new MemoryDomain(2048, seed: 3) { ReadDelayEvery = 1 };
        var options = new RemusOptions
        {
            Interval = TimeSpan.FromMilliseconds(20), Timeout = TimeSpan.FromMilliseconds(200), SyncEpochPages = 1024, HotPageEpochs = 0,
        };
        var (primary, backup, watch, _) = Protect(domain, options);
        using (primary)
        {
            Assert.True(primary.IsProtected, primary.EndReason);
            Assert.False(watch.IsCompleted, backup.LossReason);
        }
        domain.ReadDelayEvery = 0;
        Assert.Equal(BackupOutcome.Ended, watch.Wait(TimeSpan.FromSeconds(30)) ? watch.Result : throw new TimeoutException());
        Assert.Null(backup.LossReason);
    }

    private static (RemusPrimary Primary, RemusBackup Backup, Task<BackupOutcome> Watch, Func<MemoryDomain?> Built) Protect(
        MemoryDomain domain, RemusOptions options)
    {
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world);
        var (a, b) = Channel.Pair();
        var backup = new RemusBackup(b, b, options);
        MemoryDomain? built = null;
        var watch = Task.Run(() => backup.Watch(_ => built = new MemoryDomain(domain.Pages, seed: 0)));
        var primary = new RemusPrimary(domain, commit, a, a, options);
        try
        {
            primary.Protect(Config);
        }
        catch (ProtectionException e)
        {
            primary.Dispose();
            string backupSide = watch.Wait(TimeSpan.FromSeconds(10)) ? backup.LossReason ?? "(none)" : watch.Exception?.InnerException?.Message ?? "(still watching)";
            throw new Xunit.Sdk.XunitException($"protection failed: {e.Message}; the backup: {backupSide}");
        }
        return (primary, backup, watch, () => built);
    }

    private static List<(ulong Number, int Pages)> Epochs(byte[] stream)
    {
        var reader = new CheckpointReader(new MemoryStream(stream));
        reader.ReadHeader();
        var list = new List<(ulong, int)>();
        while (reader.ReadEpoch() is { } e)
            using (e) list.Add((e.Number, e.PageCount));
        return list;
    }

    /// <summary>Keeps a copy of everything read through it (the receiver's view of the stream).</summary>
    private sealed class TeeReader(System.IO.Stream inner) : ReadOnlyStream
    {
        private readonly MemoryStream _copy = new();
        public byte[] Bytes { get { lock (_copy) return _copy.ToArray(); } }
        public override int Read(Span<byte> buffer)
        {
            int n = inner.Read(buffer);
            lock (_copy) _copy.Write(buffer[..n]);
            return n;
        }
    }
}

/// <summary>
/// A domain of plain memory behind the engine's interface: pages of mixed content (random, text, zero) from a seed;
/// its "guest" changes the pages listed in <see cref="ChangesAtHarvest"/> (that many pages, one list entry per
/// harvest) just before each of the first harvests, as a guest writing meanwhile would; with
/// <see cref="ReadDelayEvery"/> reading its pages is slow (1 ms every that many pages).
/// </summary>
internal sealed class MemoryDomain : ICheckpointable
{
    private readonly byte[] _memory;
    private readonly ulong[] _dirty;
    private readonly Random _random;
    private readonly object _lock = new();
    private int _harvests, _reads;
    private bool _paused = true, _logging;

    public MemoryDomain(int pages, int seed)
    {
        Pages = pages;
        _memory = new byte[pages * 4096];
        _dirty = new ulong[(pages + 63) / 64];
        _random = new Random(seed);
        if (seed != 0)
            for (int p = 1; p < pages; p++) Fill(p, p);
    }

    public int Pages { get; }
    public int[] ChangesAtHarvest { get; init; } = [];
    public volatile int ReadDelayEvery;
    public int Loads { get; private set; }
    public byte[] Memory { get { lock (_lock) return _memory.ToArray(); } }

    private void Fill(int page, int kind)
    {
        var span = _memory.AsSpan(page * 4096, 4096);
        switch (kind % 3)
        {
            case 0: _random.NextBytes(span); break;
            case 1: for (int i = 0; i < span.Length; i++) span[i] = (byte)("the quick brown fox "[i % 20] + page % 7); break;
            default: span.Clear(); span[page % 4096] = (byte)page; break;
        }
    }

    public DomainState State { get { lock (_lock) return _paused ? DomainState.Paused : DomainState.Running; } }
    public void Pause() { lock (_lock) _paused = true; }
    public void Unpause() { lock (_lock) _paused = false; }
    public ulong PageCount => (ulong)Pages;
    public ulong ProgramFirstPage => 1;
    public int DirtyBitmapWords => _dirty.Length;

    public ReadOnlySpan<byte> ReadPage(ulong pfn)
    {
        int every = ReadDelayEvery;
        if (every > 0 && Interlocked.Increment(ref _reads) % every == 0) Thread.Sleep(1);
        return _memory.AsSpan((int)pfn * 4096, 4096);
    }

    public Span<byte> WritablePage(ulong pfn) => _memory.AsSpan((int)pfn * 4096, 4096);
    public void StartDirtyLog() { lock (_lock) _logging = true; }

    public void MarkPopulatedPages(Span<ulong> bitmap)
    {
        for (int p = 1; p < Pages; p++) bitmap[p / 64] |= 1UL << (p % 64);
    }

    public void HarvestDirty(Span<ulong> bitmap)
    {
        lock (_lock)
        {
            if (_logging && _harvests < ChangesAtHarvest.Length)
                for (int i = 0; i < ChangesAtHarvest[_harvests]; i++)
                {
                    int p = 1 + _random.Next(Pages - 1);
                    Fill(p, _random.Next(3));
                    _dirty[p / 64] |= 1UL << (p % 64);
                }
            _harvests++;
            for (int i = 0; i < _dirty.Length; i++)
            {
                bitmap[i] |= _dirty[i];
                _dirty[i] = 0;
            }
        }
    }

    public void SetUntracked(ReadOnlySpan<ulong> bitmap) { }
    public byte[] CaptureVcpuState() => [1, 2, 3, 4];
    public byte[] CaptureKernelState() => [5, 6, 7, 8];
    public void LoadState(ReadOnlySpan<byte> vcpuState, ReadOnlySpan<byte> kernelState) => Loads++;
    public void Dispose() { }
}
