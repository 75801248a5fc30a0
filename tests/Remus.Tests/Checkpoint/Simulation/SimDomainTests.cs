using System.Text;
using Remus.Sandbox;
using Remus.Simulation;
using Xunit;

namespace Remus.Tests.Checkpoint.Simulation;

/// <summary>The simulated guest keeps the promises a real domain makes to the engine.</summary>
public class SimDomainTests
{
    private sealed class Lines : IConsole
    {
        private readonly StringBuilder _text = new();
        public void Write(int stream, ReadOnlySpan<byte> data) { lock (_text) _text.Append(Encoding.ASCII.GetString(data)); }
        public int Read(Span<byte> buffer, CancellationToken cancel) => 0;
        public bool IsTerminal => false;
        public string Text { get { lock (_text) return _text.ToString(); } }
        public int Count => Text.Count(c => c == '\n');
    }

    private static readonly GuestConfig Config = new() { Seed = 7, Pages = 40, DirtyPerStep = 3, StepsPerTick = 2 };

    private static void WaitFor(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the guest made no progress");
            Thread.Sleep(2);
        }
    }

    /// <summary>Copies a paused guest's program pages and state into an incoming one, as a checkpoint does.</summary>
    private static SimDomain Restore(SimDomain from, IConsole console)
    {
        var to = SimDomain.CreateIncoming(from.Config, console);
        for (ulong p = from.ProgramFirstPage; p < from.PageCount; p++) from.ReadPage(p).CopyTo(to.WritablePage(p));
        to.LoadState(from.CaptureVcpuState(), from.CaptureKernelState());
        return to;
    }

    [Fact]
    public void Pause_returns_with_the_guest_stopped_between_steps_and_its_output_and_memory_still()
    {
        var console = new Lines();
        using var d = SimDomain.Boot(Config, console, 0xaa);
        WaitFor(() => console.Count > 20);
        d.Pause();
        Assert.Equal(DomainState.Paused, d.State);
        ulong counter = d.Counter;
        int lines = console.Count;
        Assert.Equal((ulong)lines, counter); // a step's line and its counter go together
        Thread.Sleep(30);
        Assert.Equal(counter, d.Counter);
        Assert.Equal(lines, console.Count);
        Assert.Null(d.Incoherence());
        d.Unpause();
        WaitFor(() => console.Count > lines + 5);
    }

    [Fact]
    public void A_restored_guest_continues_from_the_checkpoint_with_a_new_run_nonce()
    {
        var console = new Lines();
        using var d = SimDomain.Boot(Config, console, 0xaa);
        WaitFor(() => console.Count > 30);
        d.Pause();
        ulong at = d.Counter;
        var after = new Lines();
        using var restored = Restore(d, after);
        Assert.Null(restored.Incoherence());
        restored.StartTakeover(0xbb);
        WaitFor(() => after.Count > 5);
        var first = after.Text.Split('\n')[0];
        Assert.StartsWith($"n={at} run=000000bb ", first);
        Assert.Equal(SimDomain.Line(at, 0xbb, Config).TrimEnd(), first);
    }

    [Fact]
    public void LoadState_refuses_a_corrupt_state_and_a_state_of_another_epoch_than_the_memory()
    {
        var console = new Lines();
        using var d = SimDomain.Boot(Config, console, 0xaa);
        WaitFor(() => console.Count > 10);
        d.Pause();
        byte[] oldVcpu = d.CaptureVcpuState(), oldKernel = d.CaptureKernelState();
        d.Unpause();
        WaitFor(() => console.Count > 30);
        d.Pause();
        var to = SimDomain.CreateIncoming(Config, new Lines());
        for (ulong p = 1; p < d.PageCount; p++) d.ReadPage(p).CopyTo(to.WritablePage(p));
        var e = Assert.Throws<InvalidDataException>(() => to.LoadState(oldVcpu, oldKernel));
        Assert.Contains("incoherent", e.Message);
        var corrupt = d.CaptureVcpuState();
        corrupt[0] ^= 1;
        Assert.Throws<InvalidDataException>(() => to.LoadState(corrupt, d.CaptureKernelState()));
        to.LoadState(d.CaptureVcpuState(), d.CaptureKernelState());
        Assert.Null(to.Incoherence());
        to.WritablePage(GuestImage.HotPage + 1)[100] ^= 0x55; // one page of another epoch
        Assert.Contains($"page {GuestImage.HotPage + 1} differs", to.Incoherence());
    }

    [Fact]
    public void The_guest_exits_after_its_last_line_and_says_so_in_its_final_lines()
    {
        var console = new Lines();
        var config = Config with { ExitAt = 25, FinalLines = 2 };
        using var d = SimDomain.Boot(config, console, 0xaa);
        WaitFor(() => d.State == DomainState.Exited);
        var lines = console.Text.TrimEnd().Split('\n');
        Assert.Equal(26, lines.Length);
        Assert.Equal(25L, d.ExitedAt);
        Assert.Contains("exiting", lines[^1]);
        Assert.Contains("exiting", lines[^2]);
        Assert.DoesNotContain("exiting", lines[^3]);
        d.Pause(); // returns at once on an exited guest
    }

    [Fact]
    public void The_dirty_log_reports_every_page_a_step_wrote_and_untracked_pages_every_time()
    {
        var console = new Lines();
        using var d = SimDomain.Boot(Config, console, 0xaa);
        d.Pause();
        d.StartDirtyLog();
        var bitmap = new ulong[d.DirtyBitmapWords];
        d.HarvestDirty(bitmap);
        Assert.All(bitmap, w => Assert.Equal(0UL, w));
        ulong from = d.Counter;
        d.Unpause();
        WaitFor(() => d.Progress > (long)from + 3);
        d.Pause();
        d.HarvestDirty(bitmap);
        Span<int> pages = stackalloc int[GuestImage.PagesPerStep(Config)];
        for (ulong m = from; m < d.Counter; m++)
        {
            GuestImage.PagesOfStep(Config, m, pages);
            foreach (int p in pages) Assert.True((bitmap[p / 64] >> (p % 64) & 1) == 1, $"page {p} written at step {m} not reported");
        }
        Assert.True((bitmap[0] >> GuestImage.CounterPage & 1) == 1);
        var untracked = new ulong[d.DirtyBitmapWords];
        untracked[0] = 1UL << 30;
        d.SetUntracked(untracked);
        Array.Clear(bitmap);
        d.HarvestDirty(bitmap);
        Assert.Equal(1UL << 30, bitmap[0] & 1UL << 30);
    }
}
