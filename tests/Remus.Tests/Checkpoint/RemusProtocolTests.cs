using System.Buffers.Binary;
using System.Net.Sockets;
using Remus.Checkpoint.Remus;
using Remus.Checkpoint.Stream;
using Remus.Sandbox;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// The Remus protocol's guarantee that one copy at a time runs and releases output (issue 15, findings 1-4 and 6):
/// a stalled backup is released rather than left to take over; heartbeats let an interval exceed the backup's
/// timeout; a user's pause survives checkpoints; the last output is released only after the backup acked it; a
/// checkpoint is validated before memory is touched; a backup that takes over fences the primary.
/// </summary>
public class RemusProtocolTests
{
    private static readonly byte[] Config = "{\"name\":\"p\"}"u8.ToArray();
    private static readonly RemusOptions Fast = new() { Interval = TimeSpan.FromMilliseconds(20), Timeout = TimeSpan.FromSeconds(1) };

    private static (string Ticker, string[] Args, string Native) Ticker(int count, int intervalMs)
    {
        string ticker = GuestBuilder.Build("ticker");
        string[] args = [count.ToString(), intervalMs.ToString(), "2"];
        return (ticker, args, NativeRun.Run(new GuestInvocation(ticker) { Args = args }).StdoutText);
    }

    private static T Within<T>(Task<T> task, int seconds = 30) =>
        task.Wait(TimeSpan.FromSeconds(seconds)) ? task.Result : throw new TimeoutException("the backup's watch did not end");

    private static void WaitFor(Func<bool> condition, string what, int seconds = 30)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting until {what}");
            Thread.Sleep(5);
        }
    }

    // ---- finding 1: giving up leaves one copy ----

    [Fact]
    public void A_stalled_backup_is_released_by_the_primary_and_does_not_take_over()
    {
        var (ticker, args, native) = Ticker(150, 10);
        var spec = new DomainSpec { ProgramPath = ticker, Args = args, MemoryMiB = 32 };
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world);
        var (a, b) = Channel.Pair();
        using var d = new RunningDomain(SandboxDomain.Create(spec, commit));
        using var primary = new RemusPrimary(d.Domain, commit, a, a, Fast);
        string? lost = null;
        primary.Unprotected += r => lost = r;
        // The backup stalls for 3 s (3 x its timeout) after acking its 5th checkpoint, as a SIGSTOPped one would.
        int acked = 0;
        var stalled = Fast with
        {
            OnStep = (step, _) =>
            {
                if (step == RemusStep.BackupAcked && Interlocked.Increment(ref acked) == 5) Thread.Sleep(3000);
            },
        };
        var backup = new RemusBackup(b, b, stalled);
        var watch = Task.Run(() => backup.Watch(_ => SandboxDomain.CreateIncoming(spec, new RecordingConsole())));
        primary.Protect(Config);

        var outcome = Within(watch);
        Assert.NotEqual(BackupOutcome.Failover, outcome); // before the fix: it failed over from an older checkpoint
        Assert.Equal(BackupOutcome.Released, outcome);
        Assert.Contains("the primary released its backup", backup.LossReason);
        Assert.Null(backup.Domain);
        Assert.Equal(0, d.Wait(TimeSpan.FromSeconds(30)));
        Assert.False(primary.IsProtected);
        Assert.NotNull(lost);
        Assert.Equal(native, world.Text);
    }

    [Fact]
    public void When_the_first_checkpoints_ack_times_out_the_backup_is_released_too()
    {
        var (ticker, args, native) = Ticker(300, 10);
        var spec = new DomainSpec { ProgramPath = ticker, Args = args, MemoryMiB = 32 };
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world);
        var (a, b) = Channel.Pair();
        using var d = new RunningDomain(SandboxDomain.Create(spec, commit));
        long first = -1;
        var primaryOptions = Fast with { OnStep = (step, epoch) => { if (step == RemusStep.Staged) Interlocked.CompareExchange(ref first, (long)epoch, -1); } };
        using var primary = new RemusPrimary(d.Domain, commit, a, a, primaryOptions);
        // The backup stalls for 3 timeouts on receiving the first checkpoint (after the initial synchronisation).
        var stalled = Fast with { OnStep = (step, epoch) => { if (step == RemusStep.BackupReceived && (long)epoch == Interlocked.Read(ref first)) Thread.Sleep(3000); } };
        var backup = new RemusBackup(b, b, stalled);
        var watch = Task.Run(() => backup.Watch(_ => SandboxDomain.CreateIncoming(spec, new RecordingConsole())));
        var e = Assert.Throws<ProtectionException>(() => primary.Protect(Config));
        Assert.Contains("no acknowledgement", e.Message);
        Assert.False(primary.IsProtected);

        var outcome = Within(watch);
        Assert.NotEqual(BackupOutcome.Failover, outcome); // before the fix: it applied the checkpoint, then failed over
        Assert.Equal(BackupOutcome.Released, outcome);
        Assert.Equal(0, d.Wait(TimeSpan.FromSeconds(30)));
        Assert.Equal(native, world.Text);
    }

    [Fact]
    public void Acks_delayed_past_the_lease_release_nothing_early_and_the_backup_stands_down()
    {
        var (ticker, args, native) = Ticker(150, 10);
        var spec = new DomainSpec { ProgramPath = ticker, Args = args, MemoryMiB = 32 };
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world);
        var (a, b) = Channel.Pair();
        var acks = new HoldableReader(a);
        using var d = new RunningDomain(SandboxDomain.Create(spec, commit));
        using var primary = new RemusPrimary(d.Domain, commit, a, acks, Fast);
        var backup = new RemusBackup(b, b, Fast);
        var watch = Task.Run(() => backup.Watch(_ => SandboxDomain.CreateIncoming(spec, new RecordingConsole())));
        primary.Protect(Config);
        world.WaitForLines(10, TimeSpan.FromSeconds(20));

        acks.Hold = true; // the back direction stalls: acks (and the backup's answer) arrive late
        WaitFor(() => !primary.IsProtected, "the primary gives up");
        var outcome = Within(watch);
        Assert.Equal(BackupOutcome.Released, outcome); // before the fix: the backup failed over (two copies)
        acks.Hold = false;
        Assert.Equal(0, d.Wait(TimeSpan.FromSeconds(30)));
        Assert.Equal(native, world.Text);
    }

    [Fact]
    public void A_backup_that_takes_over_fences_the_primary_which_never_releases_again()
    {
        var (ticker, args, native) = Ticker(150, 10);
        var spec = new DomainSpec { ProgramPath = ticker, Args = args, MemoryMiB = 64 };
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world);
        var (a, b) = Channel.Pair();
        var forward = new CuttableWriter(a);
        var primaryDomain = new RunningDomain(SandboxDomain.Create(spec, commit));
        var primary = new RemusPrimary(primaryDomain.Domain, commit, forward, a, Fast);
        string? fenced = null;
        primary.Fenced += r => fenced = r;
        var backup = new RemusBackup(b, b, Fast);
        var watch = Task.Run(() => backup.Watch(_ => SandboxDomain.CreateIncoming(spec, world)));
        primary.Protect(Config);
        world.WaitForLines(30, TimeSpan.FromSeconds(30));

        forward.Cut = true; // the forward direction is cut: the backup hears nothing, the primary notices nothing
        Assert.Equal(BackupOutcome.Failover, Within(watch));
        WaitFor(() => Volatile.Read(ref fenced) != null, "the primary reads TAKEOVER");
        Assert.True(primary.IsFenced);
        Assert.True(commit.IsFenced);
        int atTakeover = world.Lines;
        backup.ReplayLastOutput(world);
        using var takeover = new RunningDomain((SandboxDomain)backup.Domain!);
        Assert.Equal(0, takeover.Wait(TimeSpan.FromSeconds(30)));
        Assert.True(world.Lines > atTakeover);
        primary.Dispose();
        primaryDomain.Dispose();
        Continuity.AssertNoGapAtMostOneEpochRepeated(native, world.Text);
    }

    // ---- finding 2: heartbeats ----

    [Fact]
    public void An_interval_longer_than_the_backups_timeout_works_thanks_to_heartbeats()
    {
        var (ticker, args, native) = Ticker(40, 100); // 4 s: longer than one interval, four timeouts
        var spec = new DomainSpec { ProgramPath = ticker, Args = args, MemoryMiB = 32 };
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world);
        var (a, b) = Channel.Pair();
        using var d = new RunningDomain(SandboxDomain.Create(spec, commit));
        var slow = Fast with { Interval = TimeSpan.FromMilliseconds(3000) };
        using var primary = new RemusPrimary(d.Domain, commit, a, a, slow);
        string? lost = null;
        primary.Unprotected += r => lost = r;
        var backup = new RemusBackup(b, b, Fast); // --timeout 1000
        var watch = Task.Run(() => backup.Watch(_ => SandboxDomain.CreateIncoming(spec, new RecordingConsole())));
        primary.Protect(Config);
        Assert.Equal(0, d.Wait(TimeSpan.FromSeconds(60)));
        primary.Dispose();
        Assert.Equal(BackupOutcome.Ended, Within(watch)); // before the fix: Failover while the primary was healthy
        Assert.Null(lost);
        Assert.Equal(native, world.Text);
    }

    [Fact]
    public void A_backup_slow_to_apply_the_initial_synchronisation_does_not_count_it_as_silence()
    {
        var (ticker, args, native) = Ticker(400, 10);
        var spec = new DomainSpec { ProgramPath = ticker, Args = args, MemoryMiB = 32 };
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world);
        var (a, b) = Channel.Pair();
        using var d = new RunningDomain(SandboxDomain.Create(spec, commit));
        using var primary = new RemusPrimary(d.Domain, commit, a, a, Fast);
        // Applying the first round takes 1.5 timeouts.
        var slowApply = Fast with { OnStep = (step, epoch) => { if (step == RemusStep.BackupReceived && epoch == 0) Thread.Sleep(1500); } };
        var backup = new RemusBackup(b, b, slowApply);
        var watch = Task.Run(() => backup.Watch(_ => SandboxDomain.CreateIncoming(spec, new RecordingConsole())));
        primary.Protect(Config); // before the fix: the backup gave up on a healthy primary and this threw
        Assert.True(primary.IsProtected);
        Assert.Equal(0, d.Wait(TimeSpan.FromSeconds(30)));
        primary.Dispose();
        Assert.Equal(BackupOutcome.Ended, Within(watch));
        Assert.Equal(native, world.Text);
    }

    [Fact]
    public void A_backup_timeout_too_short_to_work_is_refused_and_the_domain_runs_on_untouched()
    {
        var (ticker, args, native) = Ticker(30, 10);
        var spec = new DomainSpec { ProgramPath = ticker, Args = args, MemoryMiB = 32 };
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world);
        var (a, b) = Channel.Pair();
        using var d = new RunningDomain(SandboxDomain.Create(spec, commit));
        using var primary = new RemusPrimary(d.Domain, commit, a, a, Fast);
        var backup = new RemusBackup(b, b, Fast with { Timeout = TimeSpan.FromMilliseconds(50) });
        var watch = Task.Run(() => backup.Watch(_ => SandboxDomain.CreateIncoming(spec, new RecordingConsole())));
        var e = Assert.Throws<ProtectionException>(() => primary.Protect(Config));
        Assert.Contains("--timeout of 50 ms is too short", e.Message);
        Assert.False(primary.IsProtected);
        a.Socket.Close();
        Assert.Equal(0, d.Wait(TimeSpan.FromSeconds(30)));
        Assert.Equal(native, world.Text);
        var given = Assert.Throws<AggregateException>(() => watch.Wait(TimeSpan.FromSeconds(10)));
        Assert.IsType<ProtectionException>(given.InnerException);
    }

    // ---- finding 3: pause ----

    [Fact]
    public void A_paused_protected_domain_stays_paused_across_epochs()
    {
        var (ticker, args, native) = Ticker(300, 10);
        var spec = new DomainSpec { ProgramPath = ticker, Args = args, MemoryMiB = 32 };
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world);
        var (a, b) = Channel.Pair();
        using var d = new RunningDomain(SandboxDomain.Create(spec, commit));
        using var primary = new RemusPrimary(d.Domain, commit, a, a, Fast);
        var backup = new RemusBackup(b, b, Fast);
        var watch = Task.Run(() => backup.Watch(_ => SandboxDomain.CreateIncoming(spec, new RecordingConsole())));
        primary.Protect(Config);
        world.WaitForLines(20, TimeSpan.FromSeconds(20));

        primary.Pause(); // what VmmHost does for `remus pause` of a protected domain
        long epochs = primary.Stats.Epochs;
        WaitFor(() => primary.Stats.Epochs >= epochs + 3, "three epochs pass"); // what was held before the pause is out
        int paused = world.Lines;
        epochs = primary.Stats.Epochs;
        WaitFor(() => primary.Stats.Epochs >= epochs + 5, "five more epochs pass");
        Assert.Equal(paused, world.Lines); // before the fix: each epoch's postcopy resumed the guest
        Assert.Equal(DomainState.Paused, d.Domain.State);
        Assert.True(primary.IsProtected);

        primary.Unpause();
        Assert.Equal(0, d.Wait(TimeSpan.FromSeconds(30)));
        primary.Dispose();
        Assert.Equal(BackupOutcome.Ended, Within(watch));
        Assert.Equal(native, world.Text);
    }

    // ---- finding 4: the last output ----

    [Fact]
    public void At_exit_the_last_output_is_released_only_after_the_backup_acked_it()
    {
        var (ticker, args, native) = Ticker(30, 10);
        var spec = new DomainSpec { ProgramPath = ticker, Args = args, MemoryMiB = 32 };
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world);
        var (a, b) = Channel.Pair();
        using var d = new RunningDomain(SandboxDomain.Create(spec, commit));
        var staged = new System.Collections.Concurrent.ConcurrentDictionary<ulong, bool>();
        var patient = Fast with { Timeout = TimeSpan.FromSeconds(10) }; // the hold below must stay inside the lease
        var primaryOptions = patient with { OnStep = (step, epoch) => { if (step == RemusStep.Staged) staged[epoch] = true; } };
        using var primary = new RemusPrimary(d.Domain, commit, a, a, primaryOptions);
        using var gate = new ManualResetEventSlim();
        bool exitEpochHeld = false;
        // The backup holds the one epoch the primary never staged from a running guest: the EXIT epoch.
        var backupOptions = patient with
        {
            OnStep = (step, epoch) =>
            {
                // Initial-sync rounds come before the first staged epoch; the EXIT epoch after, and is never staged.
                if (step != RemusStep.BackupReceived || staged.IsEmpty || epoch < staged.Keys.Min() || staged.ContainsKey(epoch)) return;
                Volatile.Write(ref exitEpochHeld, true);
                gate.Wait(TimeSpan.FromSeconds(30));
            },
        };
        var backup = new RemusBackup(b, b, backupOptions);
        var watch = Task.Run(() => backup.Watch(_ => SandboxDomain.CreateIncoming(spec, new RecordingConsole())));
        primary.Protect(Config);
        Assert.Equal(0, d.Wait(TimeSpan.FromSeconds(30)));
        var stopped = Task.Run(primary.Dispose); // what VmmHost does when the program has exited

        WaitFor(() => Volatile.Read(ref exitEpochHeld) || world.Text.Contains("done"), "the exit epoch reaches the backup");
        Assert.DoesNotContain("done", world.Text); // before the fix: released at exit, with no ack
        Assert.True(exitEpochHeld);
        gate.Set();
        Assert.True(stopped.Wait(TimeSpan.FromSeconds(30)));
        Assert.Equal(BackupOutcome.Ended, Within(watch));
        Assert.Equal(native, world.Text);
    }

    [Fact]
    public void A_primary_lost_after_its_exit_was_acked_leaves_the_backup_with_the_exit_and_nothing_to_run()
    {
        var (ticker, args, native) = Ticker(20, 10);
        var spec = new DomainSpec { ProgramPath = ticker, Args = args, MemoryMiB = 32 };
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world);
        var (a, b) = Channel.Pair();
        using var d = new RunningDomain(SandboxDomain.Create(spec, commit));
        // The primary dies right after the EXIT epoch was acked: before releasing, before END.
        bool exitSent = false;
        var dying = Fast with
        {
            OnStep = (step, _) =>
            {
                if (step == RemusStep.ExitSent) exitSent = true;
                else if (step == RemusStep.Acked && exitSent)
                {
                    a.Socket.Close();
                    throw new InvalidOperationException("killed");
                }
            },
        };
        var primary = new RemusPrimary(d.Domain, commit, a, a, dying);
        var backup = new RemusBackup(b, b, Fast);
        var watch = Task.Run(() => backup.Watch(_ => SandboxDomain.CreateIncoming(spec, new RecordingConsole())));
        primary.Protect(Config);
        Assert.Equal(0, d.Wait(TimeSpan.FromSeconds(30)));
        primary.Dispose();
        Assert.NotNull(primary.Crash);
        Assert.DoesNotContain("done", world.Text); // the crashed primary released nothing of its last epoch

        Assert.Equal(BackupOutcome.Exited, Within(watch));
        Assert.Equal(0, backup.ExitStatus);
        backup.ReplayLastOutput(world);
        Continuity.AssertNoGapAtMostOneEpochRepeated(native, world.Text);
        backup.Domain?.Dispose();
    }

    // ---- finding 6: a half-applied checkpoint ----

    [Fact]
    public void A_checkpoint_whose_state_does_not_decode_is_refused_before_memory_is_touched()
    {
        var domain = new FakeDomain();
        var outcome = RunHandMadeStream(domain, badState: true);
        Assert.NotEqual(BackupOutcome.Failover, outcome.Outcome); // before the fix: failover, memory of epoch 2 with state of epoch 1
        Assert.Equal(BackupOutcome.Rejected, outcome.Outcome);
        Assert.Equal(0xBB, domain.Page(1)[0]); // still epoch 1's page
        Assert.Contains("does not decode", outcome.Reason);
    }

    [Fact]
    public void A_checkpoint_that_fails_to_load_after_its_memory_was_written_is_never_run()
    {
        var domain = new FakeDomain { FailLoadAt = 2 };
        var outcome = RunHandMadeStream(domain, badState: false);
        Assert.Equal(BackupOutcome.Rejected, outcome.Outcome); // before the fix: failover from an inconsistent copy
        Assert.Contains("inconsistent", outcome.Reason);
    }

    /// <summary>
    /// A primary written by hand: round 0, a good checkpoint 1 (page 1 = 0xBB), then checkpoint 2 (page 1 = 0xCC)
    /// whose kernel state is framed wrong (<paramref name="badState"/>) or fine; then the primary dies.
    /// </summary>
    private static (BackupOutcome Outcome, string? Reason) RunHandMadeStream(FakeDomain domain, bool badState)
    {
        var (a, b) = Channel.Pair();
        var backup = new RemusBackup(b, b, Fast);
        var watch = Task.Run(() => backup.Watch(_ => domain));
        var acks = new AckReader(a);
        Assert.Equal(BackRecordKind.Hello, acks.ReadNext().Kind);
        var w = new CheckpointWriter(a, CheckpointWriterOptions.Uncompressed);
        w.WriteHeader(new StreamHeader(Config));
        var page = new byte[4096];
        page[0] = 0xAA;
        w.WritePage(1, page);
        w.EndCheckpoint(0);
        Assert.Equal(0UL, acks.ReadAck()!.Value.Epoch);
        page[0] = 0xBB;
        w.WritePage(1, page);
        w.WriteVcpuState([1, 2, 3]);
        w.WriteKernelState(RemusState.Compose([9], []));
        w.EndCheckpoint(1);
        Assert.Equal(1UL, acks.ReadAck()!.Value.Epoch);
        page[0] = 0xCC;
        w.WritePage(1, page);
        w.WriteVcpuState([4, 5, 6]);
        byte[] state = RemusState.Compose([9], []);
        if (badState) BinaryPrimitives.WriteInt32LittleEndian(state, 1000); // a kernel part longer than the record
        w.WriteKernelState(state);
        w.EndCheckpoint(2);
        Thread.Sleep(100);
        a.Socket.Close(); // the primary dies
        var outcome = Within(watch);
        return (outcome, backup.LossReason);
    }

    /// <summary>A domain of eight pages that keeps what it is given; can fail to load the state of one checkpoint.</summary>
    private sealed class FakeDomain : ICheckpointable
    {
        private readonly byte[][] _pages = Enumerable.Range(0, 8).Select(_ => new byte[4096]).ToArray();
        private int _loads;
        public int FailLoadAt { get; init; } = -1;
        public byte[] Page(int pfn) => _pages[pfn];
        public DomainState State => DomainState.Paused;
        public void Pause() { }
        public void Unpause() { }
        public ulong PageCount => 8;
        public ulong ProgramFirstPage => 1;
        public int DirtyBitmapWords => 1;
        public ReadOnlySpan<byte> ReadPage(ulong pfn) => _pages[pfn];
        public Span<byte> WritablePage(ulong pfn) => _pages[pfn];
        public void StartDirtyLog() { }
        public void MarkPopulatedPages(Span<ulong> bitmap) { }
        public void HarvestDirty(Span<ulong> bitmap) { }
        public void SetUntracked(ReadOnlySpan<ulong> bitmap) { }
        public byte[] CaptureVcpuState() => [];
        public byte[] CaptureKernelState() => [];
        public void LoadState(ReadOnlySpan<byte> vcpuState, ReadOnlySpan<byte> kernelState)
        {
            if (++_loads == FailLoadAt) throw new InvalidDataException("corrupt vCPU state in the checkpoint");
        }
        public void Dispose() { }
    }

    /// <summary>The primary's end of the back channel; while <see cref="Hold"/> is set, nothing more is read (a stalled direction).</summary>
    private sealed class HoldableReader(NetworkStream inner) : Remus.Checkpoint.Stream.ReadOnlyStream
    {
        public volatile bool Hold;
        public override int Read(Span<byte> buffer)
        {
            while (Hold) Thread.Sleep(5);
            return inner.Read(buffer);
        }
    }

    /// <summary>The primary's end of the forward direction; once <see cref="Cut"/>, writes succeed and reach nobody.</summary>
    private sealed class CuttableWriter(NetworkStream inner) : System.IO.Stream
    {
        public volatile bool Cut;
        public override void Write(ReadOnlySpan<byte> buffer) { if (!Cut) inner.Write(buffer); }
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Flush() { if (!Cut) inner.Flush(); }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
