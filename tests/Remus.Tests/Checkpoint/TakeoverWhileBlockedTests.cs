using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// A forward direction that stops carrying bytes (a full send buffer: the link went quiet, nothing was reset) leaves
/// the primary's epoch loop blocked in a write. The backup hears nothing, takes over and says TAKEOVER on the other
/// direction; the primary must act on it at once (docs/stream-format.md §7.1), not only when its write returns,
/// which may be never. Found by remus-soak (seed 1445933266: a cut of primary->backup, then a primary that ran on for
/// 120 s with its output held).
/// </summary>
public class TakeoverWhileBlockedTests
{
    private static readonly RemusOptions Fast = new() { Interval = TimeSpan.FromMilliseconds(20), Timeout = TimeSpan.FromSeconds(1) };

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void A_primary_blocked_writing_stops_when_the_backup_takes_over(PlatformKind platform)
    {
        Platforms.Require(platform);
        var spec = new DomainSpec
        {
            ProgramPath = NonceTicker.Program, Args = NonceTicker.Args(30_000, TimeSpan.FromMilliseconds(2)), MemoryMiB = 64, Platform = platform,
        };
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world);
        var (a, b) = Channel.Pair();
        var forward = new StallingStream(a);
        var primaryDomain = new RunningDomain(SandboxDomain.Create(spec, commit));
        var primary = new RemusPrimary(primaryDomain.Domain, commit, forward, a, Fast);
        var fenced = new ManualResetEventSlim();
        primary.Fenced += _ => fenced.Set();
        var backup = new RemusBackup(b, b, Fast);
        var watch = Task.Run(() => backup.Watch(_ => SandboxDomain.CreateIncoming(spec, new RecordingConsole())));
        try
        {
            primary.Protect("{\"name\":\"stall\"}"u8.ToArray());
            world.WaitForLines(50, TimeSpan.FromSeconds(30));

            forward.Stall(); // from now on every write to the backup blocks, as into a full send buffer
            Assert.Equal(BackupOutcome.Failover, watch.Wait(TimeSpan.FromSeconds(30)) ? watch.Result : throw new TimeoutException("the backup did not take over"));
            Assert.True(fenced.Wait(TimeSpan.FromSeconds(30)),
                $"the backup took over but the primary, blocked writing, never stopped (protected: {primary.IsProtected}, end: {primary.EndReason})");
            Assert.True(primary.IsFenced);
        }
        finally
        {
            forward.Dispose(); // releases a write still blocked (without the fix), so the rest can end
            primary.Dispose();
            primaryDomain.Dispose();
            (backup.Domain as SandboxDomain)?.Kill();
            (backup.Domain as SandboxDomain)?.Dispose();
        }
    }

    /// <summary>A forward stream that, once stalled, blocks every write until it is disposed (then writes fail).</summary>
    private sealed class StallingStream(System.IO.Stream inner) : System.IO.Stream
    {
        private readonly ManualResetEventSlim _flowing = new(true);
        private volatile bool _disposed;

        public void Stall() => _flowing.Reset();

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            _flowing.Wait();
            if (_disposed) throw new IOException("the stream was closed while a write was blocked");
            inner.Write(buffer);
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Flush()
        {
            _flowing.Wait();
            if (_disposed) throw new IOException("the stream was closed while a flush was blocked");
            inner.Flush();
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing && !_disposed)
            {
                _disposed = true;
                _flowing.Set();
            }
            base.Dispose(disposing);
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
