using System.Globalization;

namespace Remus.Toolstack.Registry;

/// <summary>
/// Hands out domain ids that only grow, like xl's domids (the first domain is 1; ids are not reused while the run
/// directory lives). The counter is the run directory's <c>next-id</c> file; callers hold the run directory's lock.
/// </summary>
public static class DomainIdAllocator
{
    /// <summary>Allocates the next id. The caller must hold <paramref name="held"/>, the run directory's lock.</summary>
    public static int Allocate(RunDirectory runDirectory, FileLock held)
    {
        ArgumentNullException.ThrowIfNull(held);
        var next = ReadCounter(runDirectory.NextIdFile);
        // Never hand out an id that still has an entry (a lost or hand-edited counter).
        while (File.Exists(runDirectory.RecordPath(next)) || File.Exists(runDirectory.SocketPath(next))) next++;
        AtomicFile.WriteAllText(runDirectory.NextIdFile, (next + 1).ToString(CultureInfo.InvariantCulture) + "\n");
        return next;
    }

    private static int ReadCounter(string path)
    {
        try
        {
            var text = File.ReadAllText(path).Trim();
            return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0 ? value : 1;
        }
        catch (FileNotFoundException)
        {
            return 1;
        }
    }
}
