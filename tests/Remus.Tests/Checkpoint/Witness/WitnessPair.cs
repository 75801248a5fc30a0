using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Remus.Checkpoint.Remus;
using Remus.Checkpoint.Witness;
using Remus.Sandbox;
using Remus.Tests.Support;

namespace Remus.Tests.Checkpoint.Witness;

/// <summary>A console that keeps each line the program writes to stdout with the Stopwatch time it reached the world.</summary>
public sealed class TimedConsole : IConsole
{
    private readonly List<(long At, string Text)> _writes = [];
    public void Write(int stream, ReadOnlySpan<byte> data)
    {
        if (stream != 1) return;
        long at = Stopwatch.GetTimestamp();
        string text = Encoding.UTF8.GetString(data);
        lock (_writes) _writes.Add((at, text));
    }
    public int Read(Span<byte> buffer, CancellationToken cancel) => 0;
    public bool IsTerminal => false;
    public string Text { get { lock (_writes) return string.Concat(_writes.Select(w => w.Text)); } }
    public int Lines => Text.Count(c => c == '\n');
    public long? FirstAt { get { lock (_writes) return _writes.Count == 0 ? null : _writes[0].At; } }
    public long? LastAt { get { lock (_writes) return _writes.Count == 0 ? null : _writes[^1].At; } }
}

/// <summary>One direction's writer end of the replication channel: once <see cref="Cut"/>, writes succeed and reach nobody.</summary>
public sealed class CutWriter(NetworkStream inner) : System.IO.Stream
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

/// <summary>
/// A protected ticker with a witness, in process: primary and backup on a loopback channel whose two directions the
/// test can cut, each side with its own client of one <see cref="FakeEtcd"/> that the test can partition. The
/// primary's world and the backup's are separate timed consoles, so a test can see who released what, when.
/// </summary>
public sealed class WitnessPair : IDisposable
{
    public const string Domain = "tick";
    public static readonly WitnessHolder PrimaryHolder = new("host-a", 101, "primary");
    public static readonly WitnessHolder BackupHolder = new("host-b", 202, "backup");

    /// <summary>T = 1 s, TTL = 300 ms: the lease runs out well inside the primary's wait for its backup.</summary>
    public static readonly RemusOptions Fast = new()
    {
        Interval = TimeSpan.FromMilliseconds(20),
        Timeout = TimeSpan.FromSeconds(1),
        WitnessTtl = TimeSpan.FromMilliseconds(300),
        DomainName = Domain,
    };

    public FakeEtcd Etcd { get; }
    public FakeWitness PrimaryWitness { get; }
    public FakeWitness BackupWitness { get; }
    public TimedConsole PrimaryWorld { get; } = new();
    public TimedConsole BackupWorld { get; } = new();
    public OutputCommitConsole Commit { get; }
    public RunningDomain PrimaryDomain { get; }
    public RemusPrimary Primary { get; }
    public RemusBackup Backup { get; }
    public Task<BackupOutcome> Watch { get; }
    public CutWriter Forward { get; }
    public CutWriter Back { get; }
    public NetworkStream PrimarySocket { get; }
    public string Native { get; }
    public List<string> BackupLog { get; } = [];
    public string? FencedReason => Volatile.Read(ref _fenced);
    public string? UnprotectedReason => Volatile.Read(ref _unprotected);
    private string? _fenced, _unprotected;
    private readonly DomainSpec _spec;

    public WitnessPair(int ticks, Func<RemusOptions, RemusOptions>? primary = null, Func<RemusOptions, RemusOptions>? backup = null, FakeEtcd? etcd = null)
    {
        Etcd = etcd ?? new FakeEtcd();
        string ticker = GuestBuilder.Build("ticker");
        string[] args = [ticks.ToString(), "10", "2"];
        Native = NativeRun.Run(new GuestInvocation(ticker) { Args = args }).StdoutText;
        _spec = new DomainSpec { ProgramPath = ticker, Args = args, MemoryMiB = 32 };
        PrimaryWitness = new FakeWitness(Etcd);
        BackupWitness = new FakeWitness(Etcd);
        Commit = new OutputCommitConsole(PrimaryWorld);
        var (a, b) = Channel.Pair();
        PrimarySocket = a;
        Forward = new CutWriter(a);
        Back = new CutWriter(b);
        PrimaryDomain = new RunningDomain(SandboxDomain.Create(_spec, Commit));
        var po = Fast with { Witness = PrimaryWitness, Holder = PrimaryHolder };
        Primary = new RemusPrimary(PrimaryDomain.Domain, Commit, Forward, a, primary?.Invoke(po) ?? po);
        Primary.Fenced += r => Volatile.Write(ref _fenced, r);
        Primary.Unprotected += r => Volatile.Write(ref _unprotected, r);
        var bo = Fast with { Witness = BackupWitness, Holder = BackupHolder };
        Backup = new RemusBackup(b, Back, backup?.Invoke(bo) ?? bo, m => { lock (BackupLog) BackupLog.Add(m); });
        Watch = Task.Run(() => Backup.Watch(_ => SandboxDomain.CreateIncoming(_spec, BackupWorld)));
    }

    /// <summary>Cuts both directions of the replication channel (both hosts live).</summary>
    public void CutChannel()
    {
        Forward.Cut = true;
        Back.Cut = true;
    }

    public BackupOutcome Outcome(int seconds = 60) =>
        Watch.Wait(TimeSpan.FromSeconds(seconds)) ? Watch.Result : throw new TimeoutException("the backup's watch did not end");

    /// <summary>What a backup host does after Failover: re-emit the last epoch's output, run the copy to its end.</summary>
    public int RunTakeover()
    {
        Backup.ReplayLastOutput(BackupWorld);
        using var takeover = new RunningDomain((SandboxDomain)Backup.Domain!);
        return takeover.Wait(TimeSpan.FromSeconds(60));
    }

    /// <summary>When the backup took the key (Stopwatch timestamp), if it did.</summary>
    public long? BackupAcquiredAt => Etcd.Acquisitions.FirstOrDefault(x => x.Holder == BackupHolder)?.At;

    public static void WaitFor(Func<bool> condition, string what, int seconds = 60)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting until {what}");
            Thread.Sleep(5);
        }
    }

    public void Dispose()
    {
        Primary.Dispose();
        PrimaryDomain.Dispose();
        Backup.Lease?.Dispose();
        Backup.Domain?.Dispose();
    }
}
