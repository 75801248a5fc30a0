using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Remus.Tests.Toolstack;
using Xunit;
using Xunit.Sdk;

namespace Remus.Tests.EndToEnd;

/// <summary>
/// The SQLite guests of tests/guests/sqlite (bank.c, diskfull.c), linked statically against Debian's libsqlite3
/// (libsqlite3-dev): gcc -static -O2 SRC -lsqlite3 -lm -lpthread, cached by source hash next to GuestBuilder's cache.
/// </summary>
internal static class SqliteGuests
{
    private static readonly ConcurrentDictionary<string, Lazy<string>> built = new();

    /// <summary>tests/guests/sqlite/bank.c: the transaction loop and its check mode.</summary>
    public static string Bank => Build("bank");

    /// <summary>tests/guests/sqlite/diskfull.c: writes until the file system is full.</summary>
    public static string DiskFull => Build("diskfull");

    public static string Build(string name) => built.GetOrAdd(name, n => new Lazy<string>(() => Compile(n))).Value;

    private static string Compile(string name)
    {
        string source = Path.Combine(GuestBuilder.GuestsDir, "sqlite", name + ".c");
        var bytes = File.ReadAllBytes(source);
        string hash = Convert.ToHexStringLower(SHA256.HashData([.. bytes, .. "sqlite3"u8]))[..16];
        string output = Path.Combine(GuestBuilder.CacheDir, $"sqlite-{name}-{hash}");
        if (File.Exists(output)) return output;
        Directory.CreateDirectory(GuestBuilder.CacheDir);
        string tmp = $"{output}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}";
        try
        {
            var r = ProcessRunner.Run("gcc", ["-static", "-O2", "-o", tmp, source, "-lsqlite3", "-lm", "-lpthread"], null, TimeSpan.FromMinutes(2));
            if (r.ExitCode != 0 || !File.Exists(tmp))
                throw new InvalidOperationException($"building tests/guests/sqlite/{name}.c failed (is libsqlite3-dev installed?): {r}");
            File.Move(tmp, output, overwrite: true);
            return output;
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>`bank check DB` run natively: integrity_check, the balance, the rows.</summary>
    public static BankDb Check(string dbPath)
    {
        Assert.True(File.Exists(dbPath), $"no database at {dbPath}");
        var r = NativeRun.Run(new GuestInvocation(Bank) { Args = ["check", dbPath] }, TimeSpan.FromSeconds(60));
        Assert.True(r.ExitCode == 0, $"bank check {dbPath}: {r}");
        return BankDb.Parse(r.StdoutText);
    }

    /// <summary>The config of a bank domain: program args, console_log, platform and one [[volume]] at /data.</summary>
    public static string Config(DomainTestBed host, string name, string mode, long last, int pauseMs, string volume, string consoleLog,
        PlatformKind? platform, int pad = 200) =>
        host.Config($"{name}-{Guid.NewGuid():N}.toml", $"""
            name = "{name}"
            memory = 64
            program = "{Bank}"
            args = ["{mode}", "/data/bank.db", "{last.ToString(CultureInfo.InvariantCulture)}", "{pauseMs.ToString(CultureInfo.InvariantCulture)}", "{pad.ToString(CultureInfo.InvariantCulture)}"]
            console_log = "{consoleLog}"
            {E2E.PlatformLine(platform)}

            [[volume]]
            source = "{volume}"
            target = "/data"
            """);
}

/// <summary>What `bank check` printed about a database.</summary>
internal sealed record BankDb(IReadOnlyList<string> Integrity, bool BalanceOk, IReadOnlyDictionary<long, long> Rows, string Text)
{
    public bool IntegrityOk => Integrity is ["ok"];

    public long MaxId => Rows.Count == 0 ? 0 : Rows.Keys.Max();

    public static BankDb Parse(string text)
    {
        var integrity = new List<string>();
        var rows = new Dictionary<long, long>();
        bool balance = false;
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("integrity ", StringComparison.Ordinal)) integrity.Add(line["integrity ".Length..]);
            else if (line == "balance ok") balance = true;
            else if (line.StartsWith("row ", StringComparison.Ordinal))
            {
                var p = line.Split(' ');
                rows.Add(long.Parse(p[1], CultureInfo.InvariantCulture), long.Parse(p[2], CultureInfo.InvariantCulture));
            }
        }
        return new BankDb(integrity, balance, rows, text);
    }
}

/// <summary>
/// The combined console of bank runs (every VMM of a chain appends to one console_log): "resume from N", "committed
/// ID T", "done". Released output must never go back: each id once in order, except one contiguous block per
/// failover re-emitted byte for byte (the backup releases its last checkpoint's output, which the primary may have
/// released already); a "resume from N" names the last committed id before it. And the database holds exactly the
/// rows printed, with the printed times: a transaction the backup rolled back and ran again would have another time.
/// </summary>
internal static class BankConsole
{
    /// <summary>Checks the console and the database against each other; returns (ids committed, lines re-emitted).</summary>
    public static (long Committed, int Repeated) AssertConsistent(string console, BankDb db, int maxBlocks, string context)
    {
        try
        {
            var first = new Dictionary<long, string>();
            long maxId = 0, last = 0;
            long? resumedAt = null;
            int repeated = 0, blocks = 0;
            bool inBlock = false;
            var lines = console.Split('\n');
            if (lines[^1].Length != 0) throw new XunitException($"the console ends in a partial line '{lines[^1]}'");
            foreach (var line in lines[..^1])
            {
                var p = line.Split(' ');
                if (line.StartsWith("resume from ", StringComparison.Ordinal))
                {
                    long n = long.Parse(p[2], CultureInfo.InvariantCulture);
                    if (n != maxId) throw new XunitException($"'{line}' but the last id committed before it was {maxId}: the program did not continue from its database");
                    resumedAt = n;
                    inBlock = false;
                    last = n;
                    continue;
                }
                if (line == "done") { inBlock = false; continue; }
                if (p.Length != 3 || p[0] != "committed") throw new XunitException($"unexpected line '{line}'");
                long id = long.Parse(p[1], CultureInfo.InvariantCulture);
                if (resumedAt is null) throw new XunitException($"'{line}' before any 'resume from'");
                if (id == maxId + 1 && (!inBlock || last == maxId))
                {
                    first[id] = line;
                    maxId = id;
                    inBlock = false;
                }
                else if (id > maxId)
                {
                    throw new XunitException(inBlock
                        ? $"the re-emitted block stopped at {last} and the output went on at {id}: ids {last + 1}..{maxId} were released and then lost"
                        : $"gap: after id {maxId} came '{line}'");
                }
                else
                {
                    if (!first.TryGetValue(id, out var original) || original != line)
                        throw new XunitException($"rollback of released output: id {id} was released as '{original}' and later printed as '{line}' (run again)");
                    if (inBlock && id != last + 1) throw new XunitException($"the re-emitted block is not contiguous: {last} then {id}");
                    if (!inBlock)
                    {
                        blocks++;
                        inBlock = true;
                    }
                    repeated++;
                }
                last = id;
            }
            if (!console.EndsWith("done\n", StringComparison.Ordinal)) throw new XunitException("the console does not end with 'done'");
            if (blocks > maxBlocks) throw new XunitException($"{blocks} re-emitted blocks, more than the {maxBlocks} failovers");

            if (!db.IntegrityOk) throw new XunitException($"PRAGMA integrity_check: {string.Join(" / ", db.Integrity)}");
            if (!db.BalanceOk) throw new XunitException("the balance is not the sum of the ledger's ids (a transaction torn)");
            foreach (var (id, line) in first)
            {
                long t = long.Parse(line.Split(' ')[2], CultureInfo.InvariantCulture);
                if (!db.Rows.TryGetValue(id, out long dbT))
                    throw new XunitException($"id {id} was printed ('{line}': committed, fsync'ed, released) but is not in the database");
                if (dbT != t)
                    throw new XunitException($"id {id} was printed with time {t}, the database holds {dbT}: the released transaction was rolled back and run again");
            }
            var extra = db.Rows.Keys.Where(k => !first.ContainsKey(k)).Order().ToList();
            if (extra.Count > 0) throw new XunitException($"the database holds ids never printed: {string.Join(", ", extra.Take(10))}");
            return (maxId, repeated);
        }
        catch (XunitException e)
        {
            throw new XunitException($"{context}: {e.Message}\n--- console (tail) ---\n{Tail(console, 30)}");
        }
    }

    /// <summary>The highest id on a console so far (0 if none): lines may still be arriving.</summary>
    public static long MaxCommitted(string console)
    {
        long max = 0;
        foreach (var line in console.Split('\n'))
        {
            if (!line.StartsWith("committed ", StringComparison.Ordinal)) continue;
            var p = line.Split(' ');
            if (p.Length == 3 && p[2].Length > 0 && long.TryParse(p[1], CultureInfo.InvariantCulture, out long id)) max = Math.Max(max, id);
        }
        return max;
    }

    public static string Tail(string text, int lines) => string.Join('\n', text.Split('\n').TakeLast(lines));
}

/// <summary>A small tmpfs the test mounts (root only) and unmounts on dispose.</summary>
internal sealed class SmallTmpfs : IDisposable
{
    private SmallTmpfs(string path) => Path = path;

    public string Path { get; }

    /// <summary>Mounts a tmpfs of <paramref name="size"/> (mount's syntax: 1m, 512k) at a fresh directory; skips the test if mount is refused.</summary>
    public static SmallTmpfs Mount(string size)
    {
        string dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "remus-tmpfs-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(dir);
        var r = ProcessRunner.Run("mount", ["-t", "tmpfs", "-o", $"size={size}", "tmpfs", dir], null, TimeSpan.FromSeconds(30));
        if (r.ExitCode != 0)
        {
            Directory.Delete(dir);
            Skip.If(true, $"cannot mount a tmpfs (needs root): {r.StderrText.Trim()}");
        }
        return new SmallTmpfs(dir);
    }

    public void Dispose()
    {
        for (int i = 0; i < 50; i++)
        {
            var r = ProcessRunner.Run("umount", [Path], null, TimeSpan.FromSeconds(30));
            if (r.ExitCode == 0) break;
            Thread.Sleep(100); // a VMM still exiting may hold it busy
        }
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }
}
