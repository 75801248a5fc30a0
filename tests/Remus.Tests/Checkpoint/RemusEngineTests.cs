using System.Net.Sockets;
using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// Remus through the engine, in process, over loopback TCP, on each platform this machine has: failover, a lost
/// backup, a corrupt epoch, blackhole and raw modes. The process-level SIGKILL tests are in the toolstack's tests;
/// these pin down the engine's guarantees.
/// </summary>
public class RemusEngineTests
{
    private static readonly byte[] Config = "{\"name\":\"r\"}"u8.ToArray();
    private static readonly RemusOptions Fast = new() { Interval = TimeSpan.FromMilliseconds(20), Timeout = TimeSpan.FromSeconds(1) };

    private static (string Ticker, string[] Args, string Native) Ticker(int count, int intervalMs)
    {
        string ticker = GuestBuilder.Build("ticker");
        string[] args = [count.ToString(), intervalMs.ToString(), "2"];
        return (ticker, args, NativeRun.Run(new GuestInvocation(ticker) { Args = args }).StdoutText);
    }

    /// <summary>
    /// The primary dies mid-run; the backup takes over. The guest prints a clock value and random bytes with each
    /// counter, so a re-executed line differs from the one the primary released: the combined output must have every
    /// counter once, except one epoch's lines re-emitted byte for byte.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Failover_continues_on_the_backup_with_no_gap_and_at_most_one_epoch_repeated(PlatformKind platform)
    {
        Platforms.Require(platform);
        const int count = 2000; // 4 s or more: still running after a slow initial sync on a loaded machine
        var tick = TimeSpan.FromMilliseconds(2);
        var spec = new DomainSpec { ProgramPath = NonceTicker.Program, Args = NonceTicker.Args(count, tick), MemoryMiB = 64, Platform = platform };
        var world = new RecordingConsole();
        var (status, _) = InProcessFailover.Run(spec, Fast, world, 100, TimeSpan.FromSeconds(30), w =>
            Assert.False(w.Text.EndsWith("done\n", StringComparison.Ordinal), "the program ended before the primary died: make it run longer"));
        Assert.Equal(0, status);

        NonceTicker.AssertReleasedOutput(world.Text, count, NonceTicker.LinesPerEpoch(Fast.Interval, tick));
    }

    /// <summary>
    /// Values the program keeps live in xmm/ymm (zmm where AVX-512 exists) come back bit for bit on the backup after
    /// a failover: every checkpoint carries the whole extended state. tests/guests/vecregs.c loads them once and
    /// checks them after every tick; a register that changed ends it with status 1 and names the register.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Live_vector_registers_survive_a_failover(PlatformKind platform)
    {
        Platforms.Require(platform);
        const int count = 400; // 4 s and more: still running after the initial sync on a loaded machine
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("vecregs"), Args = [count.ToString(), "10"], MemoryMiB = 16, Platform = platform };
        // The failover comes from the broken connection, not the timeout: a long one costs nothing here and keeps
        // slow acks from ending protection early where everything is slow (kvm-lab runs this under TCG).
        var options = Fast with { Timeout = TimeSpan.FromSeconds(10) };
        var world = new RecordingConsole();
        var (status, linesBefore) = InProcessFailover.Run(spec, options, world, 20, TimeSpan.FromSeconds(30), w =>
            Assert.False(w.Text.Contains("intact", StringComparison.Ordinal), "the program ended before the primary died: make it run longer"));

        string text = world.Text;
        Assert.True(status == 0, $"exit {status} after a failover at line {linesBefore}:\n{text}");
        Assert.StartsWith("checking ", text);
        Assert.DoesNotContain("changed", text);
        Assert.EndsWith($"tick {count} ok\nvector registers intact\n", text);
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void When_the_backup_dies_the_primary_goes_on_unprotected_and_output_keeps_flowing(PlatformKind platform)
    {
        Platforms.Require(platform);
        var (ticker, args, native) = Ticker(200, 10);
        var spec = new DomainSpec { ProgramPath = ticker, Args = args, MemoryMiB = 32, Platform = platform };
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world);
        var (a, b) = Channel.Pair();
        using var d = new RunningDomain(SandboxDomain.Create(spec, commit));
        using var primary = new RemusPrimary(d.Domain, commit, a, a, Fast);
        string? why = null;
        primary.Unprotected += r => why = r;
        var backup = new RemusBackup(b, b, Fast);
        var watch = Task.Run(() => { try { backup.Watch(_ => SandboxDomain.CreateIncoming(spec, new RecordingConsole())); } catch (Exception) { } });
        primary.Protect(Config);
        world.WaitForLines(10, TimeSpan.FromSeconds(20));
        b.Socket.Close();
        Assert.Equal(0, d.Wait(TimeSpan.FromSeconds(30)));
        Assert.False(primary.IsProtected);
        Assert.NotNull(why);
        Assert.Equal(native, world.Text);
        watch.Wait(TimeSpan.FromSeconds(10));
    }

    public static TheoryData<PlatformKind, bool> PlatformAndBlackhole()
    {
        var d = new TheoryData<PlatformKind, bool>();
        foreach (var p in Platforms.Each) { d.Add(p, true); d.Add(p, false); }
        return d;
    }

    [SkippableTheory]
    [MemberData(nameof(PlatformAndBlackhole))]
    public void Blackhole_and_raw_modes_checkpoint_without_changing_the_output(PlatformKind platform, bool blackhole)
    {
        Platforms.Require(platform);
        var (ticker, args, native) = Ticker(120, 10);
        var spec = new DomainSpec { ProgramPath = ticker, Args = args, MemoryMiB = 32, Platform = platform };
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world);
        using var d = new RunningDomain(SandboxDomain.Create(spec, commit));
        var options = Fast with { Blackhole = blackhole, Compress = blackhole };
        string? lost = null;
        RemusPrimary primary;
        Task? watch = null;
        if (blackhole)
        {
            primary = new RemusPrimary(d.Domain, commit, System.IO.Stream.Null, null, options);
        }
        else
        {
            var (a, b) = Channel.Pair();
            primary = new RemusPrimary(d.Domain, commit, a, a, options);
            var backup = new RemusBackup(b, b, options, m => lost = "backup: " + m);
            watch = Task.Run(() => backup.Watch(_ => SandboxDomain.CreateIncoming(spec, new RecordingConsole())));
        }
        primary.Unprotected += r => lost = r;
        using (primary)
        {
            primary.Protect(Config);
            Assert.Equal(0, d.Wait(TimeSpan.FromSeconds(30)));
            Thread.Sleep(100);
            Assert.True(primary.Stats.Epochs > 3, $"{primary.Stats.Epochs} epochs; protection lost: {lost}; loop ended: {primary.EndReason}");
        }
        Assert.Equal(native, world.Text);
        if (watch != null) Assert.True(watch.Wait(TimeSpan.FromSeconds(10)));
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void A_corrupted_epoch_is_refused_the_last_good_checkpoint_kept_and_nothing_runs_twice(PlatformKind platform)
    {
        Platforms.Require(platform);
        var (ticker, args, native) = Ticker(250, 10); // still running when the corrupt epoch goes out, even when loaded
        var spec = new DomainSpec { ProgramPath = ticker, Args = args, MemoryMiB = 32, Platform = platform };
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world);
        var (a, b) = Channel.Pair();
        using var d = new RunningDomain(SandboxDomain.Create(spec, commit));
        var corrupter = new CorruptingStream(a);
        using var primary = new RemusPrimary(d.Domain, commit, corrupter, a, Fast);
        var backup = new RemusBackup(b, b, Fast);
        var watch = Task.Run(() => backup.Watch(_ => SandboxDomain.CreateIncoming(spec, new RecordingConsole())));
        primary.Protect(Config);
        world.WaitForLines(10, TimeSpan.FromSeconds(20));
        ulong good = backup.LastCheckpoint!.Value;
        corrupter.CorruptNextWrite = true;
        Assert.True(watch.Wait(TimeSpan.FromSeconds(20)));
        Assert.Equal(BackupOutcome.Rejected, watch.Result);
        Assert.True(backup.LastCheckpoint >= good);
        Assert.Equal(0, d.Wait(TimeSpan.FromSeconds(30)));
        Assert.Equal(native, world.Text);
        backup.Domain?.Dispose();
    }

    /// <summary>No domain ever runs here (the backup only builds one): one platform, whichever the machine picks.</summary>
    [Fact]
    public void A_primary_lost_before_the_first_checkpoint_makes_the_backup_give_up_cleanly()
    {
        var (a, b) = Channel.Pair();
        var backup = new RemusBackup(b, b, Fast);
        SandboxDomain? built = null;
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("ticker"), MemoryMiB = 16 };
        var watch = Task.Run(() => backup.Watch(_ => built = SandboxDomain.CreateIncoming(spec, new RecordingConsole())));
        var writer = new Remus.Checkpoint.Stream.CheckpointWriter(a);
        writer.WriteHeader(new Remus.Checkpoint.Stream.StreamHeader(Config));
        a.Flush();
        Thread.Sleep(200);
        a.Socket.Close();
        var e = Assert.Throws<AggregateException>(() => watch.Wait(TimeSpan.FromSeconds(10)));
        Assert.IsType<ProtectionException>(e.InnerException);
        Assert.Contains("before the first complete checkpoint", e.InnerException!.Message);
        Assert.NotNull(built);
        Assert.Throws<ObjectDisposedException>(() => built!.Run());
    }

    /// <summary>Flips a byte in the middle of the next large write (a page batch) when asked.</summary>
    private sealed class CorruptingStream(NetworkStream inner) : System.IO.Stream
    {
        public volatile bool CorruptNextWrite;
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (CorruptNextWrite && buffer.Length > 64)
            {
                CorruptNextWrite = false;
                var copy = buffer.ToArray();
                copy[copy.Length / 2] ^= 0xFF;
                inner.Write(copy);
                return;
            }
            inner.Write(buffer);
        }
        public override void Flush() => inner.Flush();
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
