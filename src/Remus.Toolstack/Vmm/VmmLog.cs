using System.Globalization;

namespace Remus.Toolstack.Vmm;

/// <summary>
/// A VMM's log (<c>logs/ID.log</c> in the run directory): when the domain was created, paused, renamed, and how it
/// ended. A detached VMM has no terminal, so this is where it records the program's exit status.
/// </summary>
internal sealed class VmmLog : IDisposable
{
    private readonly object _gate = new();
    private StreamWriter? _writer;

    /// <summary>Opens (appending) the log; failures are ignored: the domain runs without a log.</summary>
    public void Open(string path)
    {
        try
        {
            var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
            lock (_gate) _writer = new StreamWriter(stream) { AutoFlush = true };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    public void Write(string message)
    {
        lock (_gate)
        {
            try
            {
                _writer?.WriteLine($"{DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture)} {message}");
            }
            catch (IOException)
            {
            }
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _writer?.Dispose();
            _writer = null;
        }
    }
}
