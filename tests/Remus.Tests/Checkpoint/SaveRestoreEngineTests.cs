using Remus.Checkpoint;
using Remus.Checkpoint.Stream;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>Save and restore through the checkpoint engine, in process, on each platform this machine has: the program
/// goes on exactly as natively.</summary>
public class SaveRestoreEngineTests
{
    private static readonly byte[] Config = "{\"name\":\"t\"}"u8.ToArray();

    public static TheoryData<GuestFlavor, bool, PlatformKind> Cases()
    {
        var d = new TheoryData<GuestFlavor, bool, PlatformKind>();
        foreach (var p in Platforms.Each)
            foreach (var f in GuestBuilder.Libcs) { d.Add(f, true, p); d.Add(f, false, p); }
        return d;
    }

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void Ticker_continues_identically_after_save_and_restore(GuestFlavor flavor, bool compress, PlatformKind platform)
    {
        Platforms.Require(platform);
        string ticker = GuestBuilder.Build("ticker", flavor);
        string[] args = ["150", "10", "2"]; // ends well after the save even on a loaded machine
        var native = NativeRun.Run(new GuestInvocation(ticker) { Args = args });
        var spec = new DomainSpec { ProgramPath = ticker, Args = args, MemoryMiB = 64, Platform = platform };
        var console = new RecordingConsole();

        var file = new MemoryStream();
        using (var first = new RunningDomain(SandboxDomain.Create(spec, console)))
        {
            console.WaitForLines(8, TimeSpan.FromSeconds(20));
            first.Domain.Pause();
            DomainSave.Save(first.Domain, file, Config, compress);
        }
        int linesBefore = console.Lines;
        file.Position = 0;
        var restored = DomainSave.Restore(file, cfg =>
        {
            Assert.Equal(Config, cfg.ToArray());
            return SandboxDomain.CreateIncoming(spec, console);
        });
        using var second = new RunningDomain(restored);
        Assert.Equal(0, second.Wait(TimeSpan.FromSeconds(30)));
        Assert.True(linesBefore >= 8 && linesBefore < 150, $"saved after {linesBefore} lines");
        Assert.Equal(native.StdoutText, console.Text);
    }

    /// <summary>
    /// Values the program keeps live in xmm/ymm (zmm where AVX-512 exists) across a save and a restore into a fresh
    /// vCPU come back bit for bit (the checkpoint carries the whole XSAVE area and XCR0, not just the legacy FXSAVE
    /// part). tests/guests/vecregs.c loads them once with inline asm and checks them after every tick.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Live_vector_registers_survive_save_and_restore(PlatformKind platform)
    {
        Platforms.Require(platform);
        string vecregs = GuestBuilder.Build("vecregs");
        var spec = new DomainSpec { ProgramPath = vecregs, Args = ["150", "10"], MemoryMiB = 16, Platform = platform };
        var console = new RecordingConsole();
        var file = new MemoryStream();
        using (var first = new RunningDomain(SandboxDomain.Create(spec, console)))
        {
            console.WaitForLines(5, TimeSpan.FromSeconds(20));
            first.Domain.Pause();
            DomainSave.Save(first.Domain, file, Config, compress: false);
        }
        int linesBefore = console.Lines;
        file.Position = 0;
        var restored = DomainSave.Restore(file, _ => SandboxDomain.CreateIncoming(spec, console));
        using var second = new RunningDomain(restored);
        int status = second.Wait(TimeSpan.FromSeconds(30));
        string text = console.Text;
        Assert.True(status == 0, $"exit {status}, saved after {linesBefore} lines:\n{text}");
        Assert.True(linesBefore >= 5 && linesBefore < 150, $"saved after {linesBefore} lines");
        Assert.StartsWith("checking ", text);
        Assert.EndsWith("tick 150 ok\nvector registers intact\n", text);
    }

    /// <summary>About the stream, not the platform: run on whatever the machine picks.</summary>
    [Fact]
    public void A_corrupted_save_is_refused_and_leaves_nothing()
    {
        string ticker = GuestBuilder.Build("ticker");
        var spec = new DomainSpec { ProgramPath = ticker, Args = ["1000", "10"], MemoryMiB = 32 };
        var console = new RecordingConsole();
        var file = new MemoryStream();
        using (var d = new RunningDomain(SandboxDomain.Create(spec, console)))
        {
            console.WaitForLines(2, TimeSpan.FromSeconds(20));
            d.Domain.Pause();
            DomainSave.Save(d.Domain, file, Config, compress: false);
        }
        byte[] bytes = file.ToArray();
        bytes[bytes.Length / 2] ^= 0x40;
        SandboxDomain? built = null;
        var e = Assert.Throws<CheckpointStreamException>(() =>
            DomainSave.Restore(new MemoryStream(bytes), _ => built = SandboxDomain.CreateIncoming(spec, new RecordingConsole())));
        Assert.Contains("checksum", e.Message);
        Assert.NotNull(built);
        Assert.Throws<ObjectDisposedException>(() => built!.Run());

        var truncated = new MemoryStream(file.ToArray()[..(int)(file.Length * 2 / 3)]);
        Assert.Throws<CheckpointStreamException>(() =>
            DomainSave.Restore(truncated, _ => SandboxDomain.CreateIncoming(spec, new RecordingConsole())));
    }
}
