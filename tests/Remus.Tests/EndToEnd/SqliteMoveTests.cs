using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Xunit;

namespace Remus.Tests.EndToEnd;

/// <summary>
/// The SQLite bank (tests/guests/sqlite/bank.c) on a volume moved whole with its domain, through the real CLI: `remus
/// migrate --tcp` to a `migrate-receive --volumes DIR` in another run directory (the target needs no shared disk: its
/// copy is built from the stream), and `remus save` then `remus restore --volumes DIR`. The program goes on from the
/// next id with nothing lost or repeated, and the copy where the domain ended, read natively after it stopped, passes
/// integrity_check and holds exactly the printed rows. Both journal modes, both platforms.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class SqliteMoveTests : IDisposable
{
    private const string Name = "bank";
    private const int Last = 500, PauseMs = 10; // 5 s and more: a migration or a save comes in the middle

    private readonly DomainTestBed _source = new();
    private readonly DomainTestBed _target = new();

    public void Dispose()
    {
        _source.Dispose();
        _target.Dispose();
    }

    public static TheoryData<PlatformKind, string> Rows() => SqliteFailoverTests.Rows();

    private string Details(Receiver? receiver = null) =>
        $"{receiver?.Describe()}\n{E2E.Logs(_source)}\n{E2E.Logs(_target)}\n--- console (tail) ---\n{BankConsole.Tail(E2E.ReadText(Path.Combine(_source.Work, "bank.log")), 12)}";

    [SkippableTheory]
    [MemberData(nameof(Rows))]
    public void Migration_moves_the_database_and_the_program_continues_from_the_next_id(PlatformKind platform, string mode)
    {
        Platforms.Require(platform);
        string log = Path.Combine(_source.Work, "bank.log"), volume = Path.Combine(_source.Work, "vol"), volumes = Path.Combine(_target.Work, "volumes");
        Directory.CreateDirectory(volume);
        int vmm = E2E.VmmPid(_source.Ok("create", SqliteGuests.Config(_source, Name, mode, Last, PauseMs, volume, log, platform)));
        E2E.WaitUntil(() => BankConsole.MaxCommitted(E2E.ReadText(log)) >= 50, "50 transactions committed", TimeSpan.FromSeconds(60), () => Details());

        using var receiver = Receiver.Listen(_target, remus: false, out int port, "--allow-path", _source.Work, "--volumes", volumes);
        var migrate = _source.Remus(["migrate", "--tcp", $"127.0.0.1:{port}", "--insecure", Name], stdin: null, timeout: TimeSpan.FromSeconds(120));
        Assert.True(migrate.ExitCode == 0, $"remus migrate failed: {migrate}\n{Details(receiver)}");
        long atMigration = BankConsole.MaxCommitted(E2E.ReadText(log));
        Assert.False(E2E.EndsWithDone(log), "the program ended before the migration did: make it run longer");
        DomainTestBed.WaitUntil(() => !DomainTestBed.ProcessExists(vmm), "the source VMM exits after the migration");

        int status = receiver.WaitForExit(TimeSpan.FromSeconds(120), () => Details(receiver));
        Assert.True(status == 0, $"the migrated program ended with status {status}\n{Details(receiver)}");
        var db = SqliteGuests.Check(Path.Combine(volumes, "data", "bank.db"));
        var (committed, repeated) = BankConsole.AssertConsistent(E2E.ReadText(log), db, 0, $"{mode}, migrated at id {atMigration}\n{Details(receiver)}");
        Assert.Equal(Last, committed);
        Assert.Equal(0, repeated);
    }

    [SkippableTheory]
    [MemberData(nameof(Rows))]
    public void Save_and_restore_elsewhere_carry_the_database_and_the_program_continues_from_the_next_id(PlatformKind platform, string mode)
    {
        Platforms.Require(platform);
        string log = Path.Combine(_source.Work, "bank.log"), volume = Path.Combine(_source.Work, "vol"), file = Path.Combine(_source.Work, "bank.sav");
        string volumes = Path.Combine(_target.Work, "restored");
        Directory.CreateDirectory(volume);
        int vmm = E2E.VmmPid(_source.Ok("create", SqliteGuests.Config(_source, Name, mode, Last, PauseMs, volume, log, platform)));
        E2E.WaitUntil(() => BankConsole.MaxCommitted(E2E.ReadText(log)) >= 50, "50 transactions committed", TimeSpan.FromSeconds(60), () => Details());

        _source.Ok("save", Name, file);
        DomainTestBed.WaitUntil(() => !DomainTestBed.ProcessExists(vmm), "the saved domain's VMM exits");
        long atSave = BankConsole.MaxCommitted(E2E.ReadText(log));
        Assert.False(E2E.EndsWithDone(log), "the program ended before the save: make it run longer");

        // The source's directory goes on existing and is not touched: make sure nothing reads it by moving it away.
        Directory.Move(volume, volume + ".moved");
        var restored = _target.Ok("restore", "--volumes", volumes, file);
        int restoredVmm = E2E.VmmPid(restored);
        E2E.WaitUntil(() => E2E.EndsWithDone(log) || !DomainTestBed.ProcessExists(restoredVmm), "the restored program ends", E2E.GuestPatience, () => Details());
        Assert.True(E2E.EndsWithDone(log), $"the restored program ended without 'done'\n{Details()}");
        E2E.WaitForTheEnd(log, restoredVmm, () => Details());
        var db = SqliteGuests.Check(Path.Combine(volumes, "data", "bank.db"));
        var (committed, repeated) = BankConsole.AssertConsistent(E2E.ReadText(log), db, 0, $"{mode}, saved at id {atSave}\n{Details()}");
        Assert.Equal(Last, committed);
        Assert.Equal(0, repeated);
    }
}
