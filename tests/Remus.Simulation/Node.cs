namespace Remus.Simulation;

/// <summary>How a host dies.</summary>
public enum CrashKind
{
    /// <summary>The process is killed: its kernel closes its connections (the peer reads end of stream, its writes fail).</summary>
    Kill,
    /// <summary>The machine loses power: its connections fall silent (the peer hears nothing; its writes vanish).</summary>
    PowerOff,
}

/// <summary>
/// A host of the simulation (the primary's or the backup's): its view of the world, its ends of the channel, its
/// domain. <see cref="Crash"/> is the only way it dies: from that moment nothing it writes reaches the world or the
/// peer; its threads may run on, talking to nothing.
/// </summary>
public sealed class Node(string name, Source source, World world, EventLog trace)
{
    private readonly List<SimPipe> _pipes = [];
    private volatile bool _dead;

    public string Name => name;
    public Source Source => source;
    public NodeConsole View { get; } = new(world, source);
    public bool Dead => _dead;
    public CrashKind? CrashedAs { get; private set; }
    public double? CrashedAtMs { get; private set; }

    /// <summary>The domain this host runs (the primary's guest; the backup's restored one once built).</summary>
    public SimDomain? Domain { get; set; }

    internal void Owns(SimPipe pipe)
    {
        lock (_pipes) _pipes.Add(pipe);
    }

    public void Crash(CrashKind kind, string why)
    {
        lock (this)
        {
            if (_dead) return;
            View.Sever();
            _dead = true;
            CrashedAs = kind;
            CrashedAtMs = trace.Now;
        }
        trace.Add(name, $"CRASH ({kind}): {why}");
        bool killed = kind == CrashKind.Kill;
        SimPipe[] pipes;
        lock (_pipes) pipes = [.. _pipes];
        foreach (var p in pipes)
        {
            if (p.WriterNode == this) p.WriterDied(killed);
            if (p.ReaderNode == this) p.ReaderDied(killed);
        }
        Domain?.Kill();
    }
}
