using System.Diagnostics;
using Remus.Checkpoint.Stream;
using Remus.Simulation;
using Remus.Tests.Checkpoint.Stream;
using Xunit;

namespace Remus.Tests.Checkpoint.Simulation;

/// <summary>The in-memory channel's faults behave like a real link's.</summary>
public class SimPipeTests
{
    private static (SimPipe Pipe, Node Writer, Node Reader) NewPipe()
    {
        var clock = Stopwatch.StartNew();
        var world = new World(clock);
        var trace = new EventLog(clock);
        var w = new Node("w", Source.Primary, world, trace);
        var r = new Node("r", Source.Backup, world, trace);
        return (new SimPipe("test", w, r), w, r);
    }

    private static Task<int> ReadAsync(System.IO.Stream s, byte[] buffer) => Task.Run(() => s.Read(buffer, 0, buffer.Length));

    [Fact]
    public void A_cut_direction_accepts_the_writers_bytes_while_the_reader_hears_nothing()
    {
        var (pipe, _, _) = NewPipe();
        pipe.Writer.Write([1, 2, 3]);
        var buffer = new byte[16];
        Assert.Equal(3, pipe.Reader.Read(buffer, 0, 16));
        pipe.Silence();
        pipe.Writer.Write([4, 5, 6]); // succeeds: the writer cannot tell
        Assert.Equal(6, pipe.BytesWritten);
        var read = ReadAsync(pipe.Reader, buffer);
        Assert.False(read.Wait(100), "the reader heard something through a cut");
        pipe.Reader.Dispose(); // the backup's watchdog gives up on it
        var e = Assert.Throws<AggregateException>(() => read.Wait(TimeSpan.FromSeconds(10)));
        Assert.IsType<ObjectDisposedException>(e.InnerException);
        Assert.Equal(3, pipe.BytesDelivered);
    }

    [Fact]
    public void A_closed_direction_delivers_what_was_sent_then_end_of_stream_and_fails_the_writer()
    {
        var (pipe, _, _) = NewPipe();
        pipe.Writer.Write([1, 2, 3]);
        pipe.Close();
        Assert.Throws<IOException>(() => pipe.Writer.Write([4]));
        var buffer = new byte[16];
        Assert.Equal(3, pipe.Reader.Read(buffer, 0, 16));
        Assert.Equal(0, pipe.Reader.Read(buffer, 0, 16));
    }

    [Fact]
    public void A_killed_host_closes_its_connections_and_a_powered_off_one_falls_silent()
    {
        var (killed, kw, _) = NewPipe();
        killed.Writer.Write([1, 2]);
        kw.Crash(CrashKind.Kill, "test");
        Assert.Throws<IOException>(() => killed.Writer.Write([3])); // its threads reach nothing any more
        var buffer = new byte[16];
        Assert.Equal(2, killed.Reader.Read(buffer, 0, 16)); // what its kernel had sent still arrives
        Assert.Equal(0, killed.Reader.Read(buffer, 0, 16));

        var (off, ow, _) = NewPipe();
        off.Writer.Write([1, 2]);
        ow.Crash(CrashKind.PowerOff, "test");
        Assert.Equal(2, off.Reader.Read(buffer, 0, 16));
        var read = ReadAsync(off.Reader, buffer);
        Assert.False(read.Wait(100), "a powered-off host sent an end of stream");
        off.Reader.Dispose();

        var (toDead, _, reader) = NewPipe();
        reader.Crash(CrashKind.Kill, "test");
        Assert.Throws<IOException>(() => toDead.Writer.Write([1])); // reset by the peer's kernel
        var (toOff, _, offReader) = NewPipe();
        offReader.Crash(CrashKind.PowerOff, "test");
        toOff.Writer.Write([1]); // vanishes
    }

    [Fact]
    public void Delayed_bytes_arrive_in_order_and_no_sooner_than_the_delay()
    {
        var (pipe, _, _) = NewPipe();
        pipe.Delay(TimeSpan.FromMilliseconds(80));
        var sw = Stopwatch.StartNew();
        pipe.Writer.Write([1, 2]);
        pipe.Delay(TimeSpan.Zero);
        pipe.Writer.Write([3]); // not before the held bytes
        var buffer = new byte[16];
        int n = pipe.Reader.Read(buffer, 0, 16);
        Assert.True(sw.ElapsedMilliseconds >= 75, $"held bytes arrived after {sw.ElapsedMilliseconds} ms");
        Assert.Equal([1, 2], buffer[..n]);
        Assert.Equal(1, pipe.Reader.Read(buffer, 0, 16));
        Assert.Equal(3, buffer[0]);
    }

    /// <summary>A real checkpoint stream of <paramref name="epochs"/> epochs.</summary>
    private static byte[] Stream(int epochs, System.IO.Stream? into = null)
    {
        var memory = new MemoryImage(16);
        var f = new PageFactory(3);
        var output = into ?? new MemoryStream();
        var writer = new CheckpointWriter(output);
        writer.WriteHeader(new StreamHeader("{\"x\":1}"u8.ToArray()));
        for (int e = 0; e < epochs; e++)
        {
            for (int p = 0; p < 16; p += 3) f.Mutate(memory.Page(p));
            writer.WritePages([0, 3, 6, 9, 12, 15], memory);
            writer.WriteKernelState(new byte[40 + e]);
            writer.EndCheckpoint((ulong)e);
        }
        writer.WriteEnd();
        return (output as MemoryStream)?.ToArray() ?? [];
    }

    [Fact]
    public void The_sniffer_frames_a_real_stream_fed_in_small_pieces()
    {
        byte[] bytes = Stream(4);
        var sniffer = new StreamSniffer();
        var events = new List<StreamSniffer.Event>();
        for (int i = 0; i < bytes.Length; i += 7) sniffer.Feed(bytes.AsSpan(i, Math.Min(7, bytes.Length - i)), events);
        Assert.Equal(4, events.Count(e => e.Type == RecordType.CheckpointEnd));
        Assert.Equal(RecordType.End, events[^1].Type);
        Assert.Equal(bytes.Length - 8, events[^1].Position);
        Assert.Equal([0UL, 1, 2, 3, 4], events.Where(e => e.EpochStart).Select(e => e.Epoch));
        Assert.Equal(4UL, sniffer.Epoch);
    }

    [Theory]
    [InlineData(TapAction.Corrupt, CheckpointStreamError.ChecksumMismatch)]
    [InlineData(TapAction.Truncate, CheckpointStreamError.Truncated)]
    public void A_tap_hits_the_chosen_epoch_and_leaves_the_ones_before_intact(TapAction action, CheckpointStreamError error)
    {
        var (pipe, _, _) = NewPipe();
        var tap = new FaultTap(new StreamSniffer(), (_, _) => { }, () => { });
        tap.Add(new TapTrigger("epoch 2 byte 60", e => e.EpochStart && e.Epoch == 2 ? e.Position + 60 : null, action, 0x20));
        pipe.Tap = tap;
        var reader = new CheckpointReader(pipe.Reader);
        var writing = Task.Run(() => { try { Stream(4, pipe.Writer); } catch (IOException) { /* truncated: the writer's next write fails */ } });
        reader.ReadHeader();
        using (var e0 = reader.ReadEpoch()) Assert.Equal(0UL, e0!.Number);
        using (var e1 = reader.ReadEpoch()) Assert.Equal(1UL, e1!.Number);
        var e = Assert.Throws<CheckpointStreamException>(() => reader.ReadEpoch());
        Assert.Equal(error, e.Error);
        writing.Wait(TimeSpan.FromSeconds(10));
    }
}
