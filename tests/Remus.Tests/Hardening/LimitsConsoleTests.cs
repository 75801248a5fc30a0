using System.Text;
using Remus.Toolstack.Console;
using Xunit;

namespace Remus.Tests.Hardening;

/// <summary>
/// A console no one reads does not grow the VMM (issue 11 item 4): a created domain's console keeps only its replay
/// ring (64 KiB) when no client is attached, and a client that stops reading is dropped once 16 MiB wait for it.
/// Memory is judged by what the writing thread allocated (deterministic, whatever else the process runs), never by time.
/// </summary>
public sealed class LimitsConsoleTests
{
    private const int Total = 64 << 20;

    /// <summary>A client connection whose writes never complete: a `remus console` that stopped reading.</summary>
    private sealed class StuckClient : Stream
    {
        private readonly TaskCompletionSource _never = new();
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => new(_never.Task);
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _never.Task;
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(Task.Delay(Timeout.Infinite, cancellationToken).ContinueWith(_ => 0, TaskScheduler.Default));
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => _never.Task.Wait();
        public override void Flush() { }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    private static void Flood(ConsoleHub hub)
    {
        var chunk = new byte[4000];
        for (int written = 0, line = 0; written < Total; written += chunk.Length, line++)
        {
            line.TryFormat(chunk.AsSpan(), out _, "D8", System.Globalization.CultureInfo.InvariantCulture); // no allocation
            hub.Write(line % 7 == 0 ? 2 : 1, chunk);
        }
    }

    [Fact]
    public void A_console_with_no_client_keeps_only_its_replay_ring()
    {
        var log = new List<string>();
        using var hub = new ConsoleHub(log.Add);
        hub.Write(1, "warm"u8);
        long before = GC.GetAllocatedBytesForCurrentThread();
        Flood(hub);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 1 << 20, $"{allocated} bytes allocated for {Total} bytes nobody read");
        Assert.Equal(64 << 10, hub.ReplaySize);
        Assert.Empty(log);
    }

    [Fact]
    public void A_client_that_stops_reading_is_dropped_not_buffered_for()
    {
        var log = new List<string>();
        using var hub = new ConsoleHub(m => { lock (log) log.Add(m); });
        _ = hub.ServeAsync(new StuckClient(), replay: false);
        LimitsSupport.WaitUntil(() => hub.Clients == 1, "the client is attached");
        long before = GC.GetAllocatedBytesForCurrentThread();
        Flood(hub);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        lock (log) Assert.Contains("dropped a console client that fell behind", log);
        Assert.Equal(0, hub.Clients);
        Assert.True(allocated < 20 << 20, $"{allocated} bytes allocated for {Total} bytes a stuck client did not read (its queue is bounded at 16 MiB)");
    }

    [Fact]
    public void The_replay_ring_keeps_the_newest_bytes_in_order_across_wraps()
    {
        var ring = new ReplayBuffer(1000);
        var all = new StringBuilder();
        var rnd = new Random(5);
        for (int i = 0; i < 5000; i++)
        {
            int stream = rnd.Next(3) == 0 ? 2 : 1;
            var text = $"<{i}:{stream}>" + new string('x', rnd.Next(0, 300));
            ring.Append(stream, Encoding.ASCII.GetBytes(text));
            all.Append(text);
            Assert.InRange(ring.Size, 0, 1000);
        }
        var kept = string.Concat(ring.Snapshot().Select(c => Encoding.ASCII.GetString(c.Data)));
        Assert.Equal(all.ToString()[^1000..], kept);
    }
}
