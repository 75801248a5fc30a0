using System.Globalization;
using System.Net.Sockets;
using System.Text.Json;
using Remus.Toolstack.Control;

namespace Remus.Toolstack.Registry;

/// <summary>
/// The domains of a run directory: their entries (<c>domains/ID.json</c>) and control sockets. A VMM registers its
/// domain and renames it here, always under the run directory's lock, which makes id allocation and name uniqueness
/// atomic. Anyone who finds an entry whose VMM is gone removes it silently.
/// </summary>
public sealed class DomainRegistry(RunDirectory runDirectory)
{
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(5);

    public RunDirectory RunDirectory { get; } = runDirectory;

    /// <summary>All entries, live or not, by id. Unreadable entries are skipped.</summary>
    public IReadOnlyList<DomainRecord> Records()
    {
        if (!Directory.Exists(RunDirectory.DomainsDirectory)) return [];
        var records = new List<DomainRecord>();
        foreach (var path in Directory.EnumerateFiles(RunDirectory.DomainsDirectory, "*.json"))
            if (TryRead(path) is { } record) records.Add(record);
        records.Sort((a, b) => a.Id.CompareTo(b.Id));
        return records;
    }

    /// <summary>Whether the domain's VMM accepts connections; a stale entry is removed on the way.</summary>
    public bool IsLive(DomainRecord record)
    {
        using var client = ControlClient.TryConnect(RunDirectory.SocketPath(record.Id), ProbeTimeout);
        if (client is not null) return true;
        Forget(record.Id);
        return false;
    }

    /// <summary>The entries whose VMM is alive (stale ones are removed).</summary>
    public IReadOnlyList<DomainRecord> LiveRecords() => Records().Where(IsLive).ToList();

    /// <summary>Finds a live domain by id (a number) or by name.</summary>
    public DomainRecord Resolve(string domain)
    {
        var live = LiveRecords();
        if (int.TryParse(domain, NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            && live.FirstOrDefault(r => r.Id == id) is { } byId)
            return byId;
        return live.FirstOrDefault(r => r.Name == domain) ?? throw new UnknownDomainException(domain);
    }

    /// <summary>Removes a domain's entry and socket (a VMM that is gone, or one that is leaving).</summary>
    public void Forget(int id)
    {
        TryDelete(RunDirectory.RecordPath(id));
        TryDelete(RunDirectory.SocketPath(id));
    }

    /// <summary>Removes stale entries, sockets without an entry and leftover temporary files. Needs the lock:
    /// a VMM creates its socket and then its entry while holding it.</summary>
    public void Sweep(FileLock held)
    {
        ArgumentNullException.ThrowIfNull(held);
        if (!Directory.Exists(RunDirectory.DomainsDirectory)) return;
        var live = LiveRecords().Select(r => r.Id).ToHashSet();
        foreach (var path in Directory.EnumerateFiles(RunDirectory.DomainsDirectory))
        {
            var name = Path.GetFileName(path);
            if (name.EndsWith(".tmp", StringComparison.Ordinal)) { TryDelete(path); continue; }
            var stem = Path.GetFileNameWithoutExtension(name);
            if (!int.TryParse(stem, NumberStyles.None, CultureInfo.InvariantCulture, out var id) || !live.Contains(id))
                TryDelete(path);
        }
    }

    /// <summary>
    /// Registers a new domain (VMM side): under the lock, refuses a name in use, allocates an id, lets
    /// <paramref name="listen"/> bind the control socket at the id's path, then writes the entry.
    /// </summary>
    public (DomainRecord Record, Socket Listener) Register(string name, int memory, string program, Func<string, Socket> listen)
    {
        using var held = RunDirectory.Lock();
        Sweep(held);
        RefuseNameInUse(name, exceptId: null);
        var id = DomainIdAllocator.Allocate(RunDirectory, held);
        var socketPath = RunDirectory.SocketPath(id);
        var listener = listen(socketPath);
        try
        {
            var record = new DomainRecord
            {
                Id = id, Name = name, Pid = Environment.ProcessId, Memory = memory, Program = program,
                Created = DateTimeOffset.UtcNow,
            };
            Write(record);
            return (record, listener);
        }
        catch
        {
            listener.Dispose();
            Forget(id);
            throw;
        }
    }

    /// <summary>Renames a registered domain (VMM side), refusing a name in use.</summary>
    public DomainRecord Rename(int id, string newName)
    {
        using var held = RunDirectory.Lock();
        RefuseNameInUse(newName, exceptId: id);
        var record = TryRead(RunDirectory.RecordPath(id)) ?? throw new RemusException($"domain {id} has no registry entry");
        var renamed = record with { Name = newName };
        Write(renamed);
        return renamed;
    }

    /// <summary>Removes a domain's entry, then its socket (VMM side, when the domain is gone).</summary>
    public void Unregister(int id)
    {
        using var held = RunDirectory.Lock();
        Forget(id);
    }

    private void RefuseNameInUse(string name, int? exceptId)
    {
        foreach (var record in Records())
            if (record.Name == name && record.Id != exceptId && IsLive(record))
                throw new RemusException($"domain name '{name}' is already in use (domain {record.Id})");
    }

    private void Write(DomainRecord record) =>
        AtomicFile.WriteAllText(RunDirectory.RecordPath(record.Id), JsonSerializer.Serialize(record, ToolstackJson.Default.DomainRecord) + "\n");

    private static DomainRecord? TryRead(string path)
    {
        try
        {
            var record = JsonSerializer.Deserialize(File.ReadAllText(path), ToolstackJson.Default.DomainRecord);
            return record is { Version: DomainRecord.CurrentVersion } ? record : null;
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Someone else removed it, or we may not: either way nothing to do.
        }
    }
}
