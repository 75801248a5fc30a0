using Remus.Toolstack.Registry;

namespace Remus.Tests.Toolstack;

/// <summary>A run directory of its own under the temp folder (short: socket paths must fit 108 bytes).</summary>
internal sealed class TempRunDirectory : IDisposable
{
    public TempRunDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "rt-" + Guid.NewGuid().ToString("N")[..10]);
        Run = new RunDirectory(Path);
        Run.EnsureExists();
    }

    public string Path { get; }

    public RunDirectory Run { get; }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
