namespace Remus.Toolstack.Registry;

/// <summary>Writes a whole file so that readers see either the old or the new content (write, then rename).</summary>
internal static class AtomicFile
{
    public static void WriteAllText(string path, string text)
    {
        var temp = $"{path}.{Environment.ProcessId}.tmp";
        File.WriteAllText(temp, text);
        File.Move(temp, path, overwrite: true);
    }
}
