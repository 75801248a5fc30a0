using System.Diagnostics;
using Remus.Checkpoint;
using Remus.Checkpoint.Migration;
using Remus.Checkpoint.Stream;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;
using Xunit.Abstractions;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// Checkpoints are platform-neutral (issue 7 item 4): a domain saved or migrated on the ptrace platform goes on on
/// KVM, and the reverse, with no gap and no rollback in its output and its live vector registers intact; neither
/// platform's private pages (KVM's page tables, GDT/TSS and stubs in the first 2 MiB) travel in the stream.
/// </summary>
public class CrossPlatformTests(ITestOutputHelper output)
{
    private static readonly byte[] Config = "{\"name\":\"x\"}"u8.ToArray();

    private static DomainSpec Spec(string program, string[] args, int mib, PlatformKind platform) =>
        new() { ProgramPath = program, Args = args, MemoryMiB = mib, Platform = platform };

    /// <summary>Runs <paramref name="spec"/> on its platform until <paramref name="lines"/> lines, pauses and saves it.</summary>
    private static MemoryStream SaveAfter(DomainSpec spec, RecordingConsole console, int lines, bool compress = true)
    {
        var file = new MemoryStream();
        using (var first = new RunningDomain(SandboxDomain.Create(spec, console)))
        {
            Assert.Equal(spec.Platform, first.Domain.Platform.Kind);
            console.WaitForLines(lines, TimeSpan.FromSeconds(30));
            first.Domain.Pause();
            DomainSave.Save(first.Domain, file, Config, compress);
        }
        file.Position = 0;
        return file;
    }

    private SandboxDomain RestoreOn(MemoryStream file, DomainSpec spec, RecordingConsole console)
    {
        var sw = Stopwatch.StartNew();
        var restored = DomainSave.Restore(file, _ => SandboxDomain.CreateIncoming(spec, console));
        output.WriteLine($"restore of {file.Length / 1e6:F2} MB onto {spec.Platform}: {sw.Elapsed.TotalMilliseconds:F1} ms");
        Assert.Equal(spec.Platform, restored.Platform.Kind);
        return restored;
    }

    [CrossPlatformTheory]
    [MemberData(nameof(CrossPlatform.Directions), MemberType = typeof(CrossPlatform))]
    public void A_ticker_saved_on_one_platform_continues_on_the_other_with_no_gap(PlatformKind from, PlatformKind to)
    {
        string ticker = GuestBuilder.Build("ticker");
        string[] args = ["150", "10", "2"];
        var native = NativeRun.Run(new GuestInvocation(ticker) { Args = args });
        var console = new RecordingConsole();
        var file = SaveAfter(Spec(ticker, args, 64, from), console, 8);
        int linesBefore = console.Lines;

        using var second = new RunningDomain(RestoreOn(file, Spec(ticker, args, 64, to), console));
        Assert.Equal(0, second.Wait(TimeSpan.FromSeconds(60)));
        Assert.True(linesBefore >= 8 && linesBefore < 150, $"saved after {linesBefore} lines");
        Assert.Equal(native.StdoutText, console.Text); // every line once, in order, identical: no gap, no rollback
    }

    /// <summary>
    /// tests/guests/vecregs.c keeps known values live in xmm8-15 (ymm with AVX, zmm8-31 with AVX-512) and checks every
    /// bit after each tick: the neutral FPU state moves them between ptrace's NT_X86_XSTATE and KVM's XSAVE area.
    /// </summary>
    [CrossPlatformTheory]
    [MemberData(nameof(CrossPlatform.Directions), MemberType = typeof(CrossPlatform))]
    public void Live_vector_registers_survive_a_save_on_one_platform_and_a_restore_on_the_other(PlatformKind from, PlatformKind to)
    {
        string vecregs = GuestBuilder.Build("vecregs");
        string[] args = ["120", "10"];
        var console = new RecordingConsole();
        var file = SaveAfter(Spec(vecregs, args, 16, from), console, 5, compress: false);
        int linesBefore = console.Lines;

        using var second = new RunningDomain(RestoreOn(file, Spec(vecregs, args, 16, to), console));
        int status = second.Wait(TimeSpan.FromSeconds(60));
        string text = console.Text;
        output.WriteLine(text.Split('\n')[0]);
        Assert.True(status == 0, $"exit {status}, saved after {linesBefore} lines:\n{text}");
        Assert.True(linesBefore >= 5 && linesBefore < 120, $"saved after {linesBefore} lines");
        Assert.StartsWith("checking ", text);
        Assert.EndsWith("tick 120 ok\nvector registers intact\n", text);
    }

    [CrossPlatformFact(FromPtrace = true)]
    public Task A_running_ticker_migrates_from_ptrace_to_KVM() => Migrate(PlatformKind.Ptrace, PlatformKind.Kvm);

    [CrossPlatformFact]
    public Task A_running_ticker_migrates_from_KVM_to_ptrace() => Migrate(PlatformKind.Kvm, PlatformKind.Ptrace);

    private async Task Migrate(PlatformKind from, PlatformKind to)
    {
        string ticker = GuestBuilder.Build("ticker");
        string[] args = ["300", "10", "4"];
        var native = NativeRun.Run(new GuestInvocation(ticker) { Args = args });
        var console = new RecordingConsole();
        var (a, b) = Channel.Pair();
        using var source = new RunningDomain(SandboxDomain.Create(Spec(ticker, args, 64, from), console));
        Assert.Equal(from, source.Domain.Platform.Kind);
        console.WaitForLines(5, TimeSpan.FromSeconds(30));

        SandboxDomain? arrived = null;
        var receiver = new MigrationReceiver(b, b);
        var target = Task.Run(() => arrived = receiver.Receive(_ => SandboxDomain.CreateIncoming(Spec(ticker, args, 64, to), console)));
        var sender = new MigrationSender(source.Domain, a, a, new MigrationOptions());
        var resultTask = Task.Run(() =>
        {
            try { return sender.Migrate(Config); }
            finally { if (!sender.HandedOver) a.Socket.Close(); }
        });
        await Task.WhenAny(target, resultTask).WaitAsync(TimeSpan.FromSeconds(60));
        if (resultTask.IsFaulted) await resultTask;
        await target.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.NotNull(arrived);
        Assert.Equal(to, arrived!.Platform.Kind);
        using var moved = new RunningDomain(arrived);
        receiver.ConfirmRunning();
        var result = await resultTask.WaitAsync(TimeSpan.FromSeconds(60));
        source.Domain.Kill();
        output.WriteLine($"{from} -> {to}: {result.Rounds} rounds, {result.PagesSent} pages, downtime {result.Downtime.TotalMilliseconds:F1} ms");

        Assert.Equal(0, moved.Wait(TimeSpan.FromSeconds(60)));
        Assert.Equal(native.StdoutText, console.Text);
    }

    /// <summary>
    /// The first 2 MiB are the platform's: KVM keeps its page tables, GDT/IDT/TSS and stubs there (written while the
    /// program runs: the syscall stack, the saved user rsp), ptrace maps nothing there. A stream from either names no
    /// page below it, and a receiver refuses one that does (so it rebuilds its own area and never trusts the
    /// sender's); the cross-platform runs above show each platform's area intact after the other's pages.
    /// </summary>
    [CrossPlatformTheory]
    [MemberData(nameof(CrossPlatform.Directions), MemberType = typeof(CrossPlatform))]
    public void No_page_of_the_platforms_own_area_travels(PlatformKind from, PlatformKind to)
    {
        _ = to;
        string ticker = GuestBuilder.Build("ticker");
        var console = new RecordingConsole();
        var file = SaveAfter(Spec(ticker, ["1000", "5"], 16, from), console, 3, compress: false);
        var reader = new CheckpointReader(file);
        reader.ReadHeader();
        var sink = new RecordingSink(16UL << 20 >> 12);
        while (reader.ReadEpoch() is { } epoch)
            using (epoch) epoch.ApplyTo(sink);
        Assert.NotEmpty(sink.Pfns);
        Assert.True(sink.Pfns.Min() >= SandboxDomain.FirstPage, $"page {sink.Pfns.Min()} of the platform's area is in the stream");
    }

    /// <summary>A page sink that accepts every page and remembers which.</summary>
    private sealed class RecordingSink(ulong pages) : IPageSink
    {
        private readonly byte[] _page = new byte[4096];
        public List<ulong> Pfns { get; } = [];
        public ulong PageCount => pages;
        public bool Accepts(ulong pfn) => pfn < pages;
        public Span<byte> GetPage(ulong pfn)
        {
            Pfns.Add(pfn);
            return _page;
        }
    }
}
