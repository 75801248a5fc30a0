using System.Buffers.Binary;
using Remus.Checkpoint.Remus;
using Remus.Sandbox;
using Remus.Sandbox.Net;
using Remus.Simulation;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// Output commit on the wire (issue 9): a protected domain's outbound frames share the console's hold — released only
/// once the backup acknowledged their epoch, in the order they were sent, dropped when the backup took over, and
/// re-emitted by the backup at failover so that nothing is missing; unprotected, they go straight to the wire.
/// The engine tests drive the real <see cref="RemusPrimary"/> and <see cref="RemusBackup"/> with a simulated guest.
/// </summary>
public class NetOutputCommitTests
{
    /// <summary>A wire that records the sequence numbers of the frames it carries (the first 4 bytes of each).</summary>
    private sealed class RecordingWire : INetLink
    {
        private readonly List<int> _frames = [];

        public void SendFrame(ReadOnlySpan<byte> frame)
        {
            lock (_frames) _frames.Add(BinaryPrimitives.ReadInt32LittleEndian(frame));
        }

        public int[] Frames
        {
            get { lock (_frames) return [.. _frames]; }
        }
    }

    private static byte[] Frame(int seq)
    {
        var f = new byte[60];
        BinaryPrimitives.WriteInt32LittleEndian(f, seq);
        return f;
    }

    [Fact]
    public void Unprotected_frames_go_straight_to_the_wire()
    {
        var wire = new RecordingWire();
        var commit = new OutputCommitConsole(new RecordingConsole()) { Wire = wire };
        commit.Frames.SendFrame(Frame(1));
        commit.Frames.SendFrame(Frame(2));
        Assert.Equal([1, 2], wire.Frames);
    }

    [Fact]
    public void Frames_are_held_until_their_epoch_is_released_then_go_in_order_with_the_console()
    {
        var wire = new RecordingWire();
        var world = new RecordingConsole();
        var commit = new OutputCommitConsole(world) { Wire = wire };
        commit.StartHolding();
        commit.Frames.SendFrame(Frame(1));
        commit.Write(1, "a\n"u8);
        commit.Frames.SendFrame(Frame(2));
        var epoch1 = commit.SealEpoch(1);
        commit.Frames.SendFrame(Frame(3));
        commit.SealEpoch(2);
        commit.Frames.SendFrame(Frame(4));
        Assert.Empty(wire.Frames);
        Assert.Equal("", world.Text);
        Assert.Equal(2, OutputCommitConsole.CountFrames(epoch1));
        Assert.Equal(4, commit.NetStats.FramesHeld);

        commit.Release(1);
        Assert.Equal([1, 2], wire.Frames);
        Assert.Equal("a\n", world.Text);
        commit.Release(2);
        Assert.Equal([1, 2, 3], wire.Frames);
        var stats = commit.NetStats;
        Assert.Equal(3, stats.FramesReleased);
        Assert.Equal(180, stats.BytesReleased);
        Assert.Equal(1, stats.FramesHeld);
        Assert.True(stats.LatencyP99Ms >= stats.LatencyP50Ms && stats.LatencyP50Ms >= 0);

        commit.StopHolding(); // protection ends: the open epoch goes too, and then frames pass straight through
        commit.Frames.SendFrame(Frame(5));
        Assert.Equal([1, 2, 3, 4, 5], wire.Frames);
    }

    [Fact]
    public void Fenced_frames_are_dropped_held_and_later_ones_alike()
    {
        var wire = new RecordingWire();
        var commit = new OutputCommitConsole(new RecordingConsole()) { Wire = wire };
        commit.StartHolding();
        commit.Frames.SendFrame(Frame(1));
        commit.SealEpoch(1);
        commit.Frames.SendFrame(Frame(2));
        commit.Fence();
        commit.Frames.SendFrame(Frame(3));
        commit.Release(1);
        commit.StopHolding();
        Assert.Empty(wire.Frames);
        Assert.Equal(3, commit.NetStats.FramesDropped);
    }

    [Fact]
    public void An_epochs_output_replays_console_and_frames_in_order()
    {
        var commit = new OutputCommitConsole(new RecordingConsole());
        commit.StartHolding();
        commit.Write(1, "x\n"u8);
        commit.Frames.SendFrame(Frame(7));
        commit.Write(1, "y\n"u8);
        commit.Frames.SendFrame(Frame(8));
        var encoded = commit.SealEpoch(1);
        OutputCommitConsole.Validate(encoded);
        var wire = new RecordingWire();
        var console = new RecordingConsole();
        OutputCommitConsole.Replay(console, wire, encoded);
        Assert.Equal([7, 8], wire.Frames);
        Assert.Equal("x\ny\n", console.Text);
        // Without a wire (a console-only replay) the frames are not written to the console.
        var only = new RecordingConsole();
        OutputCommitConsole.Replay(only, encoded);
        Assert.Equal("x\ny\n", only.Text);
    }

    /// <summary>The guest's stack: sends numbered frames through output commit until stopped.</summary>
    private sealed class FrameSender : IDisposable
    {
        private readonly Thread _thread;
        private volatile bool _stop;
        private int _next;

        public FrameSender(INetLink link)
        {
            _thread = new Thread(() =>
            {
                while (!_stop)
                {
                    link.SendFrame(Frame(Interlocked.Increment(ref _next) - 1));
                    Thread.Sleep(1);
                }
            }) { IsBackground = true, Name = "frame-sender" };
            _thread.Start();
        }

        /// <summary>The sequence number the next frame gets.</summary>
        public int Next => Volatile.Read(ref _next);

        public void WaitFor(int seq)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (Next <= seq && DateTime.UtcNow < deadline) Thread.Sleep(2);
            Assert.True(Next > seq, $"the sender reached only frame {Next}");
        }

        public int Stop()
        {
            _stop = true;
            _thread.Join();
            return Next;
        }

        public void Dispose() => Stop();
    }

    /// <summary>Steps of the primary's epoch loop as they happen, to wait for one (not a timing).</summary>
    private sealed class Steps
    {
        private readonly List<(RemusStep Step, ulong Epoch, int FramesSent)> _seen = [];
        public Func<int> FramesSent { get; set; } = () => 0;

        public void On(RemusStep step, ulong epoch)
        {
            lock (_seen)
            {
                _seen.Add((step, epoch, FramesSent()));
                Monitor.PulseAll(_seen);
            }
        }

        /// <summary>Waits for a step matching <paramref name="match"/> and returns it.</summary>
        public (RemusStep Step, ulong Epoch, int FramesSent) WaitFor(Func<(RemusStep Step, ulong Epoch, int FramesSent), bool> match)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            lock (_seen)
            {
                while (true)
                {
                    foreach (var s in _seen) if (match(s)) return s;
                    var left = deadline - DateTime.UtcNow;
                    Assert.True(left > TimeSpan.Zero, "the epoch loop did not reach the step");
                    Monitor.Wait(_seen, left);
                }
            }
        }
    }

    /// <summary>
    /// The guarantee: while the backup's acks cannot reach the primary, no frame the guest sent after that moment
    /// reaches the wire — its epoch is sealed and sent, but not acknowledged. Once acks flow again, every frame
    /// arrives, exactly once and in order. (Releasing an epoch's frames before its ack turns this red.)
    /// </summary>
    [Fact]
    public void While_acks_are_withheld_no_frame_sent_since_reaches_the_wire()
    {
        var guest = new GuestConfig { Seed = 11 };
        var steps = new Steps();
        var wire = new RecordingWire();
        var commit = new OutputCommitConsole(new RecordingConsole()) { Wire = wire };
        var (a, b) = Channel.Pair();
        var gate = new GatedAcks(a);
        FrameSender? sender = null;
        long withholdAfter = long.MaxValue;
        int firstAfter = -1;
        var options = new RemusOptions
        {
            Interval = TimeSpan.FromMilliseconds(10), Timeout = TimeSpan.FromSeconds(30),
            OnStep = (step, epoch) =>
            {
                // On the loop's thread, between epoch K's release and epoch K+1's pause: the acks stop here, and the
                // guest sends a few frames that epoch K+1 will carry.
                if (step == RemusStep.Released && (long)epoch == Interlocked.Read(ref withholdAfter))
                {
                    gate.Withhold();
                    firstAfter = sender!.Next; // every frame numbered from here on was sent after the acks stopped
                    sender.WaitFor(firstAfter + 3);
                }
                steps.On(step, epoch);
            },
        };
        using var domain = SimDomain.Boot(guest, commit, 1);
        using var primary = new RemusPrimary(domain, commit, a, gate, options);
        var backup = new RemusBackup(b, b, options with { OnStep = null });
        var watch = Task.Run(() => backup.Watch(json => SimDomain.CreateIncoming(GuestConfig.FromJson(json.Span), new RecordingConsole())));
        primary.Protect(guest.ToJson());
        sender = new FrameSender(commit.Frames);
        steps.FramesSent = () => sender.Next;
        var released = steps.WaitFor(s => s.Step == RemusStep.Released && s.FramesSent > 20);
        Interlocked.Exchange(ref withholdAfter, (long)released.Epoch + 2);
        ulong k1 = released.Epoch + 3;
        // Epoch K+1 is sealed (with frames sent after the acks stopped), sent, and its ack withheld.
        steps.WaitFor(s => s.Step == RemusStep.EndSent && s.Epoch == k1);
        sender.WaitFor(sender.Next + 20); // time for a wrong release to show, counted in the guest's frames
        var during = wire.Frames;
        Assert.True(during.Length > 0, "frames acknowledged before the gate closed were released");
        Assert.True(during.All(seq => seq < firstAfter),
            $"frame {during.FirstOrDefault(seq => seq >= firstAfter)} reached the wire although it was sent after the acks stopped (first such: {firstAfter})");

        gate.Open();
        steps.WaitFor(s => s.Step == RemusStep.Released && s.Epoch > k1);
        int total = sender.Stop();
        primary.Dispose(); // END, then everything held is released
        Assert.Equal(BackupOutcome.Ended, watch.Wait(TimeSpan.FromSeconds(60)) ? watch.Result : throw new TimeoutException("the backup's watch"));
        Assert.Equal(Enumerable.Range(0, total), wire.Frames);
        Assert.Equal(0, commit.NetStats.FramesHeld);
        Assert.Equal(total, commit.NetStats.FramesReleased);
    }

    /// <summary>
    /// Blackhole (`protect -b`): no backup, each epoch's frames are released once its checkpoint was written; they
    /// flow while protected, and all arrive, once and in order.
    /// </summary>
    [Fact]
    public void With_a_blackhole_frames_are_released_after_their_checkpoint_is_written()
    {
        var guest = new GuestConfig { Seed = 13 };
        var steps = new Steps();
        var wire = new RecordingWire();
        var commit = new OutputCommitConsole(new RecordingConsole()) { Wire = wire };
        var options = new RemusOptions { Interval = TimeSpan.FromMilliseconds(10), Blackhole = true, OnStep = steps.On };
        using var domain = SimDomain.Boot(guest, commit, 1);
        var primary = new RemusPrimary(domain, commit, System.IO.Stream.Null, null, options);
        primary.Protect(guest.ToJson());
        using var sender = new FrameSender(commit.Frames);
        steps.FramesSent = () => sender.Next;
        var sealedWithFrames = steps.WaitFor(s => s.Step == RemusStep.Staged && s.FramesSent > 5);
        steps.WaitFor(s => s.Step == RemusStep.Released && s.Epoch == sealedWithFrames.Epoch);
        Assert.True(commit.NetStats.FramesReleased > 0, "frames flow while protected with a blackhole");
        int total = sender.Stop();
        primary.Dispose();
        Assert.Equal(Enumerable.Range(0, total), wire.Frames);
        Assert.True(commit.NetStats.FramesReleased == total && commit.NetStats.FramesHeld == 0, $"{commit.NetStats}");
    }

    /// <summary>
    /// Failover: the primary crashes after sending a checkpoint (it releases nothing more); the backup takes over and
    /// re-emits that checkpoint's frames through its wire. What the world saw from both is every frame up to the
    /// checkpoint, in order, none missing (the last epoch's may appear twice), and nothing sent after it.
    /// </summary>
    [Fact]
    public void At_takeover_the_backup_replays_the_last_epochs_frames_and_nothing_is_missing()
    {
        var guest = new GuestConfig { Seed = 12 };
        var steps = new Steps();
        int crashAfter = int.MaxValue;
        FrameSender? takeoverSender = null;
        var crashed = new ManualResetEventSlim();
        var options = new RemusOptions { Interval = TimeSpan.FromMilliseconds(10), Timeout = TimeSpan.FromSeconds(2) };
        var primaryWire = new RecordingWire();
        var commit = new OutputCommitConsole(new RecordingConsole()) { Wire = primaryWire };
        var (a, b) = Channel.Pair();
        using var domain = SimDomain.Boot(guest, commit, 1);
        using var primary = new RemusPrimary(domain, commit, a, a, options with
        {
            OnStep = (step, epoch) =>
            {
                // The last epoch carries frames whatever the machine's load: the guest sends two more before its pause.
                if (step == RemusStep.BeforeSuspend && (long)epoch == Volatile.Read(ref crashAfter)) takeoverSender!.WaitFor(takeoverSender.Next + 2);
                steps.On(step, epoch);
                if (step == RemusStep.EndSent && (long)epoch >= Volatile.Read(ref crashAfter))
                {
                    crashed.Set();
                    throw new InvalidOperationException("primary host dies");
                }
            },
        });
        var backup = new RemusBackup(b, b, options);
        var watch = Task.Run(() => backup.Watch(json => SimDomain.CreateIncoming(GuestConfig.FromJson(json.Span), new RecordingConsole())));
        primary.Protect(guest.ToJson());
        using var sender = new FrameSender(commit.Frames);
        takeoverSender = sender;
        steps.FramesSent = () => sender.Next;
        var released = steps.WaitFor(s => s.Step == RemusStep.Released && s.FramesSent > 30);
        Volatile.Write(ref crashAfter, (int)released.Epoch + 2);
        Assert.True(crashed.Wait(TimeSpan.FromSeconds(60)), "the primary did not reach its crash");
        var before = steps.WaitFor(s => s.Step == RemusStep.BeforeSuspend && (long)s.Epoch == Volatile.Read(ref crashAfter));
        var last = steps.WaitFor(s => s.Step == RemusStep.Staged && (long)s.Epoch == Volatile.Read(ref crashAfter));
        a.Dispose(); // the primary's host is gone: its connection closes

        Assert.True(watch.Wait(TimeSpan.FromSeconds(60)), "the backup did not decide");
        Assert.Equal(BackupOutcome.Failover, watch.Result);
        var backupWire = new RecordingWire();
        backup.ReplayLastOutput(new RecordingConsole(), backupWire);
        sender.Stop();

        var seen = primaryWire.Frames.Concat(backupWire.Frames).Distinct().Order().ToArray();
        Assert.True(backupWire.Frames.Length > 0, "the last epoch carried frames to replay");
        Assert.Equal(Enumerable.Range(0, seen.Length), seen); // no gap
        // Every frame sent before the last checkpoint's pause is in it or before it (the one being sent then may
        // fall either side); none sent after its seal is out.
        Assert.True(seen.Length >= before.FramesSent - 1 && seen.Length <= last.FramesSent,
            $"the world saw frames 0..{seen.Length - 1}; the last checkpoint began when {before.FramesSent} had been sent and was sealed by {last.FramesSent}");
        Assert.Equal(backupWire.Frames.Order(), backupWire.Frames); // replayed in order
        backup.Domain?.Dispose();
    }
}
