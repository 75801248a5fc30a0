using Remus.Sandbox;

namespace Remus.Simulation;

/// <summary>
/// What one side (a host) can write to the world: nothing once it crashed. The crash takes the same lock as a write,
/// so a write is either wholly before the crash or not at all. <see cref="AfterWrite"/> lets a scenario crash the
/// side right after a given line was released.
/// </summary>
public sealed class NodeConsole(World world, Source source) : IConsole
{
    private readonly object _lock = new();
    private bool _severed;

    public Action<string>? AfterWrite { get; set; }

    public void Write(int stream, ReadOnlySpan<byte> data)
    {
        if (stream != 1) return;
        lock (_lock)
        {
            if (_severed) return;
            world.Record(source, data);
        }
        AfterWrite?.Invoke(System.Text.Encoding.ASCII.GetString(data));
    }

    public int Read(Span<byte> buffer, CancellationToken cancel) => 0;

    public bool IsTerminal => false;

    internal void Sever()
    {
        lock (_lock) _severed = true;
    }
}
