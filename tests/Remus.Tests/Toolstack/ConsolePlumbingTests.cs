using System.Text;
using Remus.Toolstack.Console;
using Xunit;

namespace Remus.Tests.Toolstack;

public sealed class ConsolePlumbingTests
{
    private static string Text(IEnumerable<(int Stream, byte[] Data)> chunks) =>
        string.Concat(chunks.Select(c => $"{c.Stream}:{Encoding.ASCII.GetString(c.Data)}|"));

    [Fact]
    public void Replay_keeps_the_last_bytes_with_their_streams()
    {
        var replay = new ReplayBuffer(10);
        replay.Append(1, "abcd"u8);
        replay.Append(2, "efgh"u8);
        Assert.Equal("1:abcd|2:efgh|", Text(replay.Snapshot()));
        replay.Append(1, "ijkl"u8);
        Assert.Equal("1:cd|2:efgh|1:ijkl|", Text(replay.Snapshot()));
        replay.Append(2, "0123456789ABC"u8);
        Assert.Equal("2:3456789ABC|", Text(replay.Snapshot()));
        replay.Append(1, ""u8);
        Assert.Equal("2:3456789ABC|", Text(replay.Snapshot()));
    }

    [Fact]
    public async Task Input_is_read_in_order_across_chunks_and_ends_when_completed()
    {
        var input = new ConsoleInput();
        await input.PostAsync("hello "u8.ToArray());
        await input.PostAsync("world"u8.ToArray());
        input.Complete();
        var buffer = new byte[4];
        var read = new StringBuilder();
        int n;
        while ((n = input.Read(buffer, CancellationToken.None)) > 0) read.Append(Encoding.ASCII.GetString(buffer, 0, n));
        Assert.Equal("hello world", read.ToString());
        Assert.Equal(0, input.Read(buffer, CancellationToken.None));
    }

    [Fact]
    public void Input_read_blocks_until_cancelled()
    {
        var input = new ConsoleInput();
        using var cancel = new CancellationTokenSource(100);
        Assert.ThrowsAny<OperationCanceledException>(() => input.Read(new byte[8], cancel.Token));
    }

    [Fact]
    public async Task Input_read_wakes_when_input_arrives()
    {
        var input = new ConsoleInput();
        var reader = Task.Run(() =>
        {
            var buffer = new byte[8];
            var n = input.Read(buffer, CancellationToken.None);
            return Encoding.ASCII.GetString(buffer, 0, n);
        });
        await Task.Delay(50);
        Assert.False(reader.IsCompleted);
        await input.PostAsync("x"u8.ToArray());
        Assert.Equal("x", await reader.WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task Posting_after_completion_is_dropped()
    {
        var input = new ConsoleInput();
        input.Complete();
        await input.PostAsync("late"u8.ToArray());
        Assert.Equal(0, input.Read(new byte[8], CancellationToken.None));
    }
}
