using System.Buffers.Binary;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Remus.Toolstack;
using Xunit;

namespace Remus.Tests.EndToEnd;

/// <summary>
/// `remus save` / `remus restore` through the real CLI, on detached domains running tests/guests/ticker.c: the
/// restored program continues exactly where it was saved (its console_log equals a native run's output), `save -c`
/// leaves it running, and damaged save files are refused with one line and nothing left behind. Save and restore
/// run on each platform this machine has; the damaged files are the stream's business (one platform).
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class SaveRestoreCliTests : IDisposable, IClassFixture<SaveRestoreCliTests.SavedTicker>
{
    // Long enough (5 s and more) that the program outlives a save and a `remus list` after it on a loaded machine.
    private const int Count = 250, Interval = 20, Mib = 2;

    private readonly DomainTestBed _host = new();
    private readonly SavedTicker _saved;

    public SaveRestoreCliTests(SavedTicker saved)
    {
        _saved = saved;
    }

    public void Dispose() => _host.Dispose();

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Save_stops_the_domain_and_restore_continues_with_no_gap_and_no_repeat(PlatformKind platform)
    {
        Platforms.Require(platform);
        var native = Ticker.NativeAsync(Count, Interval, Mib);
        string log = Path.Combine(_host.Work, "t.log"), file = Path.Combine(_host.Work, "t.sav");
        var created = _host.Ok("create", Ticker.Config(_host, "t", Count, Interval, Mib, log, platform: platform));
        int firstVmm = E2E.VmmPid(created);
        E2E.WaitUntil(() => E2E.Lines(log) >= 10, "the ticker printed 10 lines");

        var saved = _host.Ok("save", "t", file);
        Assert.Contains("saved domain 't'", saved.StdoutText);
        Assert.True(File.Exists(file), "no save file");
        Assert.False(File.Exists(file + ".partial"), "the temporary .partial file was left behind");

        // save (without -c) stops the domain: gone from the list, its VMM exits, and it prints nothing more.
        DomainTestBed.WaitUntil(() => !DomainTestBed.ProcessExists(firstVmm), "the saved domain's VMM exits");
        Assert.Empty(_host.List());
        int atSave = E2E.Lines(log);
        Assert.True(atSave < Count, $"the program had already ended ({atSave} lines) when it was saved: make it run longer");
        Thread.Sleep(200);
        Assert.Equal(atSave, E2E.Lines(log));

        // The stream names the platform the domain ran on (its vCPU state is that platform's), never "auto".
        using (var f = File.OpenRead(file))
        {
            var header = new Remus.Checkpoint.Stream.CheckpointReader(f).ReadHeader();
            string config = System.Text.Encoding.UTF8.GetString(header.DomainConfig.Span);
            Assert.Contains($"\"Platform\":\"{Platforms.Name(platform)}\"", config);
        }

        var restored = _host.Ok("restore", file);
        Assert.Contains("Domain 't' restored", restored.StdoutText);
        int vmm = E2E.VmmPid(restored);
        Assert.Equal(DomainRunState.Running, E2E.Single(_host, "t").State);
        E2E.WaitForTheEnd(log, vmm, () => E2E.Logs(_host));

        E2E.SameOutput(native.Result, E2E.ReadText(log), _host);
        DomainTestBed.WaitUntil(() => _host.DomainEntries().Length == 0, "the restored domain is unregistered at its end");
    }

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void Save_c_keeps_the_domain_running_and_its_file_restores_from_the_save_point(PlatformKind platform)
    {
        Platforms.Require(platform);
        var native = Ticker.NativeAsync(Count, Interval, Mib);
        string log = Path.Combine(_host.Work, "k.log"), file = Path.Combine(_host.Work, "k.sav");
        int vmm = E2E.VmmPid(_host.Ok("create", Ticker.Config(_host, "k", Count, Interval, Mib, log, platform: platform)));
        E2E.WaitUntil(() => E2E.Lines(log) >= 10, "the ticker printed 10 lines");

        int before = E2E.Lines(log);
        var saved = _host.Ok("save", "-c", "k", file);
        int after = E2E.Lines(log);
        Assert.Contains("saved domain 'k'", saved.StdoutText);
        Assert.True(after < Count, $"the program had already ended ({after} lines) at the save: make it run longer");

        // Still running, same VMM, and its output goes on.
        var info = E2E.Single(_host, "k");
        Assert.Equal(DomainRunState.Running, info.State);
        Assert.Equal(vmm, info.Pid);
        E2E.WaitUntil(() => E2E.Lines(log) > after + 5, "the program goes on printing after save -c");
        E2E.WaitForTheEnd(log, vmm, () => E2E.Logs(_host));
        string expected = native.Result;
        E2E.SameOutput(expected, E2E.ReadText(log), _host);

        // The file holds the program as it was at the save: restored (after the original ended), it prints the rest
        // of the native output from the line after the save point onwards, appended to the same console_log.
        int restoredVmm = E2E.VmmPid(_host.Ok("restore", file));
        E2E.WaitUntil(() => E2E.ReadText(log).Length > expected.Length && E2E.EndsWithDone(log), "the restored copy ends",
            E2E.GuestPatience, () => E2E.Logs(_host));
        E2E.WaitForTheEnd(log, restoredVmm, () => E2E.Logs(_host));
        string suffix = E2E.ReadText(log)[expected.Length..];
        var nativeLines = expected.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var suffixLines = suffix.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        int savePoint = nativeLines.Length - suffixLines.Length; // lines printed before the save
        Assert.True(savePoint >= before && savePoint <= after,
            $"the restored copy starts after line {savePoint}, but the save happened when {before}..{after} lines were out");
        Assert.Equal(nativeLines[savePoint..], suffixLines);
    }

    [Theory]
    [InlineData("corrupted")]
    [InlineData("truncated")]
    [InlineData("wrong-version")]
    public void A_damaged_save_file_is_refused_with_one_line_and_nothing_is_left(string damage)
    {
        var bytes = File.ReadAllBytes(_saved.SaveFile);
        Assert.True(bytes.Length > 4096, $"the save file is only {bytes.Length} bytes");
        switch (damage)
        {
            case "corrupted":
                bytes[bytes.Length / 2] ^= 0xff; // flip a byte in the middle
                break;
            case "truncated":
                bytes = bytes[..(bytes.Length / 2)];
                break;
            case "wrong-version":
                Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)));
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), 7);
                break;
        }
        string file = Path.Combine(_host.Work, damage + ".sav");
        File.WriteAllBytes(file, bytes);

        var result = _host.Remus("restore", file);

        string line = E2E.OneLineFailure(result, $"remus restore of a {damage} file");
        Assert.Contains(damage + ".sav", line);
        switch (damage)
        {
            case "truncated": Assert.Contains("truncated", line); break;
            case "wrong-version": Assert.Contains("version 7", line); break;
        }
        Assert.Empty(_host.List());
        Assert.Empty(_host.DomainEntries());
        Assert.Empty(_host.ProcessesOfThisRunDir());
        Assert.False(File.Exists(_saved.ConsoleLog) && E2E.ReadText(_saved.ConsoleLog).Length != _saved.ConsoleLength,
            "the refused restore wrote to the domain's console_log");
    }

    /// <summary>One save file of a ticker, made once for the class in a run directory of its own.</summary>
    public sealed class SavedTicker : IDisposable
    {
        private readonly DomainTestBed _host = new();

        public SavedTicker()
        {
            ConsoleLog = Path.Combine(_host.Work, "saved.log");
            SaveFile = Path.Combine(_host.Work, "saved.sav");
            _host.Ok("create", Ticker.Config(_host, "saved", 1000, Interval, Mib, ConsoleLog));
            E2E.WaitUntil(() => E2E.Lines(ConsoleLog) >= 3, "the ticker to save printed 3 lines");
            _host.Ok("save", "saved", SaveFile);
            DomainTestBed.WaitUntil(() => _host.ProcessesOfThisRunDir().Count == 0, "the saved domain's VMM exits");
            ConsoleLength = E2E.ReadText(ConsoleLog).Length;
        }

        public string SaveFile { get; }

        public string ConsoleLog { get; }

        public int ConsoleLength { get; }

        public void Dispose() => _host.Dispose();
    }
}
