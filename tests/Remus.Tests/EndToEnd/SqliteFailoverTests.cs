using System.Diagnostics;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Xunit;
using Xunit.Abstractions;

namespace Remus.Tests.EndToEnd;

/// <summary>
/// Issue 10's headline: a SQLite program (tests/guests/sqlite/bank.c, synchronous=FULL, WAL with exclusive locking or
/// the rollback journal) in a protected domain whose data lives on a volume survives a SIGKILL of its primary VMM with
/// an intact database holding every transaction whose id it printed, and resumes. The real CLI: remus create with a
/// [[volume]], remus migrate-receive -r --volumes DIR as the backup (another run directory on this host), remus
/// protect -i 50. Each round is a fresh domain on the volume the previous round's backup took over (so the program
/// also restarts from the database: "resume from N"), killed at a seeded random moment just after its console grew,
/// run to its end on the backup; then, with the domain stopped, `bank check` natively on the backup's copy:
/// integrity_check ok, the balance the sum of the ids, and exactly the rows the console printed, with the printed
/// times (a released transaction rolled back and run again would have another). The console of all rounds together
/// never goes back (BankConsole). Five rounds per journal mode and platform.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class SqliteFailoverTests(ITestOutputHelper output) : IDisposable
{
    private const string Name = "bank";
    // A round's program makes PerRound transactions, PauseMs apart at least (4 s and more): protection starts in its first
    // part, the kill comes 5..60 transactions after protect returned, and the rest runs on the backup.
    private const int Rounds = 5, PerRound = 400, PauseMs = 10, EpochMs = 50;

    // beds[r] runs round r's primary; beds[r + 1] is its backup (and round r + 1's primary).
    private readonly DomainTestBed[] _beds = [.. Enumerable.Range(0, Rounds + 1).Select(_ => new DomainTestBed())];

    public void Dispose()
    {
        foreach (var b in _beds) b.Dispose();
    }

    public static TheoryData<PlatformKind, string> Rows()
    {
        var d = new TheoryData<PlatformKind, string>();
        foreach (var p in Platforms.Each)
        {
            d.Add(p, "wal");
            d.Add(p, "delete");
        }
        return d;
    }

    /// <summary>Where round <paramref name="r"/>'s domain keeps /data: a fresh directory, then each backup's copy.</summary>
    private string Volume(int r) => r == 0 ? Path.Combine(_beds[0].Work, "vol") : Path.Combine(BackupVolumes(r), "data");

    /// <summary>The --volumes DIR of the backup at beds[r].</summary>
    private string BackupVolumes(int r) => Path.Combine(_beds[r].Work, "volumes");

    [SkippableTheory]
    [MemberData(nameof(Rows))]
    public void The_database_survives_SIGKILL_of_the_primary_with_every_printed_transaction_and_the_program_resumes(PlatformKind platform, string mode)
    {
        Platforms.Require(platform);
        var random = new Random(mode == "wal" ? 1009 : 2003);
        string log = Path.Combine(_beds[0].Work, "bank.log"); // every VMM of every round appends here
        Directory.CreateDirectory(Volume(0));
        var notes = new List<string>();
        long last = 0;
        for (int r = 0; r < Rounds; r++)
        {
            Receiver? backup = null;
            string Details() => $"{backup?.Describe()}\n{E2E.Logs(_beds[r])}\n{E2E.Logs(_beds[r + 1])}\n--- console (tail) ---\n{BankConsole.Tail(E2E.ReadText(log), 12)}";
            try
            {
                long target = last + PerRound;
                int from = E2E.ReadText(log).Length; // this round's console starts here
                bool Ended() => E2E.ReadText(log)[from..].EndsWith("done\n", StringComparison.Ordinal);
                string config = SqliteGuests.Config(_beds[r], Name, mode, target, PauseMs, Volume(r), log, platform);
                int vmm = E2E.VmmPid(_beds[r].Ok("create", config));
                backup = Receiver.Listen(_beds[r + 1], remus: true, out int port, "--allow-path", _beds[0].Work, "--volumes", BackupVolumes(r + 1));
                var protect = _beds[r].Remus(["protect", "-i", EpochMs.ToString(), "--tcp", $"127.0.0.1:{port}", "--insecure", Name], stdin: null,
                    timeout: TimeSpan.FromSeconds(120));
                Assert.True(protect.ExitCode == 0, $"round {r + 1}: remus protect failed: {protect}\n{Details()}");

                // Kill once the protected program made a random number of transactions more, just after its console grew.
                long protectedAt = BankConsole.MaxCommitted(E2E.ReadText(log));
                long killAt = protectedAt + random.Next(5, 60);
                Assert.True(killAt < target, $"round {r + 1}: protect returned at id {protectedAt} of {target}: make the program run longer");
                E2E.WaitUntil(() => BankConsole.MaxCommitted(E2E.ReadText(log)) >= killAt || Ended(),
                    $"round {r + 1}: id {killAt} is printed", TimeSpan.FromSeconds(120), Details);
                Assert.False(Ended(), $"round {r + 1}: the program ended before the kill: make it run longer");
                Thread.Sleep(random.Next(0, EpochMs));
                KillJustAfterARelease(log, vmm);
                long atKill = BankConsole.MaxCommitted(E2E.ReadText(log));
                Assert.True(Process.GetProcessById(vmm).WaitForExit(10_000), $"the VMM {vmm} survived SIGKILL");
                backup.WaitForStderr($"Remus failover for domain {Name}", TimeSpan.FromSeconds(60));
                int status = backup.WaitForExit(TimeSpan.FromSeconds(120), Details);
                Assert.True(status == 0, $"round {r + 1}: the backup's program ended with status {status}\n{Details()}");

                // The domain is gone: its volume is the backup's copy, read natively.
                var db = SqliteGuests.Check(Path.Combine(Volume(r + 1), "bank.db"));
                var (committed, repeated) = BankConsole.AssertConsistent(E2E.ReadText(log), db, r + 1,
                    $"{Platforms.Name(platform)} {mode}, round {r + 1}, killed at id {atKill}\n{Details()}");
                Assert.Equal(target, committed);
                notes.Add($"round {r + 1}: killed at id {atKill}, {repeated} lines re-emitted so far");
                last = target;
            }
            finally
            {
                backup?.Dispose();
            }
        }
        output.WriteLine($"{Platforms.Name(platform)} {mode}: {string.Join("; ", notes)}");
    }

    /// <summary>SIGKILLs <paramref name="vmm"/> (this pid only) just after the console grew: the domain then runs the epoch after a release.</summary>
    internal static void KillJustAfterARelease(string log, int vmm)
    {
        long size = new FileInfo(log).Length;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (new FileInfo(log).Length == size && DateTime.UtcNow < deadline) Thread.Sleep(1);
        Process.GetProcessById(vmm).Kill(); // SIGKILL, this pid only
    }
}
