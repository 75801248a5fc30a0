using Remus.Sandbox.Platform;
using Remus.Toolstack;
using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Xunit;

namespace Remus.Tests.EndToEnd;

/// <summary>
/// Issue 10's durability rules at the edges, through the real CLI. (That an fsync'ed and released transaction survives
/// a failover is SqliteFailoverTests.) Disk full on the primary: the program gets ENOSPC from write, as natively on
/// the same small tmpfs. Disk full on the backup: it cannot apply an epoch's volume operations, refuses the epoch
/// and protection ends WITHOUT a takeover; the primary runs on unprotected and its database is whole.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class SqliteDurabilityTests : IDisposable
{
    private readonly DomainTestBed _primary = new();
    private readonly DomainTestBed _backup = new();

    public void Dispose()
    {
        _primary.Dispose();
        _backup.Dispose();
    }

    private string Details(Receiver? receiver = null) => $"{receiver?.Describe()}\n{E2E.Logs(_primary)}\n{E2E.Logs(_backup)}";

    [SkippableTheory]
    [MemberData(nameof(Platforms.All), MemberType = typeof(Platforms))]
    public void A_full_volume_gives_the_program_ENOSPC_as_natively(PlatformKind platform)
    {
        Platforms.Require(platform);
        using var tmpfs = SmallTmpfs.Mount("1m");
        var native = NativeRun.Run(new GuestInvocation(SqliteGuests.DiskFull) { Args = [Path.Combine(tmpfs.Path, "fill")] });
        Assert.True(native.ExitCode == 0 && native.StdoutText.StartsWith("write failed ENOSPC\n", StringComparison.Ordinal), $"native: {native}");

        var inDomain = RemusCli.Run(["run", "--platform", Platforms.Name(platform), "--volume", $"{tmpfs.Path}:/data", SqliteGuests.DiskFull, "/data/fill"],
            timeout: TimeSpan.FromSeconds(60));
        Assert.True(inDomain.ExitCode == 0, $"in the domain: {inDomain}");
        Assert.Equal(native.StdoutText, inDomain.StdoutText);
        Assert.Empty(Directory.GetFiles(tmpfs.Path)); // the program removed its file
    }

    [SkippableFact]
    public void A_backup_that_cannot_apply_an_epoch_ends_protection_without_takeover_and_the_primary_runs_on()
    {
        // The backup keeps its copy on an 8 MiB tmpfs; the bank writes 16 KiB rows, at most 100 a second, so some
        // 500 transactions (5 s) in, an epoch no longer fits there. The primary's volume is on the ordinary disk.
        using var tmpfs = SmallTmpfs.Mount("8m");
        const int last = 1200;
        string log = Path.Combine(_primary.Work, "bank.log"), volume = Path.Combine(_primary.Work, "vol");
        Directory.CreateDirectory(volume);
        int vmm = E2E.VmmPid(_primary.Ok("create", SqliteGuests.Config(_primary, "bank", "delete", last, 10, volume, log, platform: null, pad: 16384)));
        using var backup = Receiver.Listen(_backup, remus: true, out int port, "--allow-path", _primary.Work, "--volumes", tmpfs.Path);
        var protect = _primary.Remus(["protect", "-i", "50", "--tcp", $"127.0.0.1:{port}", "--insecure", "bank"], stdin: null, timeout: TimeSpan.FromSeconds(120));
        Assert.True(protect.ExitCode == 0, $"remus protect failed: {protect}\n{Details(backup)}");

        // The backup refuses the epoch that does not fit and goes away without taking over.
        int status = backup.WaitForExit(TimeSpan.FromSeconds(120), () => $"console at id {BankConsole.MaxCommitted(E2E.ReadText(log))}\n{Details(backup)}");
        Assert.DoesNotContain("failover", backup.Stderr);
        Assert.True(status != 0, $"the backup should report its failure:\n{Details(backup)}");
        Assert.Empty(_backup.List());

        // The primary noticed, says why, and runs on unprotected to its end.
        RemusDomainInfo? remus = null;
        E2E.WaitUntil(() => (remus = E2E.Single(_primary, "bank").Remus) is { Protected: false } || E2E.EndsWithDone(log),
            "list --json shows remus.protected false", TimeSpan.FromSeconds(60), () => Details(backup));
        Assert.False(E2E.EndsWithDone(log), $"the program ended before the backup gave up: make it run longer\n{Details(backup)}");
        Assert.False(string.IsNullOrEmpty(remus!.Lost), "list --json does not say why protection was lost");
        long atLoss = BankConsole.MaxCommitted(E2E.ReadText(log));
        E2E.WaitForTheEnd(log, vmm, () => Details(backup));
        Assert.Contains("continues unprotected", E2E.Logs(_primary));

        var db = SqliteGuests.Check(Path.Combine(volume, "bank.db"));
        var (committed, _) = BankConsole.AssertConsistent(E2E.ReadText(log), db, 0, $"protection lost at id {atLoss}\n{Details(backup)}");
        Assert.Equal(last, committed);
    }
}
