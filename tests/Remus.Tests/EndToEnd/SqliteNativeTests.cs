using Remus.Tests.Support;
using Xunit;
using Xunit.Sdk;

namespace Remus.Tests.EndToEnd;

/// <summary>
/// The SQLite bank natively, the oracle of the volume tests: both journal modes run, stop, resume from the database
/// and pass the console/database check; and the check catches what a backup that applied volume operations late,
/// never or twice would show (a printed id missing from the database, a released transaction run again).
/// </summary>
public sealed class SqliteNativeTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "remus-bank-" + Guid.NewGuid().ToString("N")[..10]);

    public SqliteNativeTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Run(string mode, string db, long last)
    {
        var r = NativeRun.Run(new GuestInvocation(SqliteGuests.Bank) { Args = [mode, db, last.ToString(), "0"] }, TimeSpan.FromSeconds(60));
        Assert.True(r.ExitCode == 0, $"bank {mode} {db} {last}: {r}");
        return r.StdoutText;
    }

    [Theory]
    [InlineData("wal")]
    [InlineData("delete")]
    public void The_bank_resumes_from_its_database_and_the_check_passes(string mode)
    {
        string db = Path.Combine(_dir, "bank.db");
        string console = Run(mode, db, 30) + Run(mode, db, 50);
        Assert.Contains("resume from 30\n", console);
        var (committed, repeated) = BankConsole.AssertConsistent(console, SqliteGuests.Check(db), 0, mode);
        Assert.Equal(50, committed);
        Assert.Equal(0, repeated);
        Assert.False(File.Exists(db + "-wal"), "a clean close leaves no WAL");
    }

    [Theory]
    [InlineData("wal")]
    [InlineData("delete")]
    public void The_check_catches_a_database_behind_the_console_and_a_transaction_run_again(string mode)
    {
        string db = Path.Combine(_dir, "bank.db"), behind = Path.Combine(_dir, "behind.db");
        string console = Run(mode, db, 20);
        File.Copy(db, behind);
        console += Run(mode, db, 30);

        // A copy that never got the last ten transactions: ids printed (released) but not in the database.
        var e = Assert.Throws<XunitException>(() => BankConsole.AssertConsistent(console, SqliteGuests.Check(behind), 0, "behind"));
        Assert.Contains("is not in the database", e.Message);

        // The same copy after the program ran those transactions again: same ids, other times (a rollback).
        Run(mode, behind, 30);
        e = Assert.Throws<XunitException>(() => BankConsole.AssertConsistent(console, SqliteGuests.Check(behind), 0, "rerun"));
        Assert.Contains("rolled back and run again", e.Message);

        // A console that re-emits a block byte for byte passes; one that prints a released id differently does not.
        var lines = console.Split('\n')[..^1];
        string reemitted = string.Join('\n', [.. lines[..15], .. lines[12..]]) + "\n";
        Assert.Equal(3, BankConsole.AssertConsistent(reemitted, SqliteGuests.Check(db), 1, "re-emitted").Repeated);
        var p14 = lines[14].Split(' ');
        string other = $"{p14[0]} {p14[1]} {long.Parse(p14[2]) + 1}";
        string changed = string.Join('\n', [.. lines[..15], other, .. lines[15..]]) + "\n";
        Assert.Throws<XunitException>(() => BankConsole.AssertConsistent(changed, SqliteGuests.Check(db), 1, "changed"));
    }
}
