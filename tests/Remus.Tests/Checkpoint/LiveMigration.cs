using Remus.Checkpoint.Migration;
using Remus.Sandbox;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>A live migration inside the test process, as `remus migrate` does between hosts: the engine's sender and
/// receiver over a loopback socket pair, the target a new domain writing to the same console.</summary>
internal static class LiveMigration
{
    /// <summary>
    /// Moves <paramref name="source"/> (running <paramref name="spec"/>) to a new domain and starts it; the source is
    /// killed once the target confirmed it runs. Returns the moved domain, running, and how many lines the console had
    /// when the target took over. Each step waits at most <paramref name="patience"/>.
    /// </summary>
    public static async Task<(RunningDomain Moved, int LinesAtHandover)> MoveAsync(RunningDomain source, DomainSpec spec,
        RecordingConsole console, byte[] config, TimeSpan patience)
    {
        var (a, b) = Channel.Pair();
        SandboxDomain? arrived = null;
        var receiver = new MigrationReceiver(b, b);
        var target = Task.Run(() => arrived = receiver.Receive(_ => SandboxDomain.CreateIncoming(spec, console)));
        var sender = new MigrationSender(source.Domain, a, a, new MigrationOptions());
        var sent = Task.Run(() =>
        {
            try { return sender.Migrate(config); }
            finally { if (!sender.HandedOver) a.Socket.Close(); }
        });
        await Task.WhenAny(target, sent).WaitAsync(patience);
        if (sent.IsFaulted) await sent;
        await target.WaitAsync(patience);
        Assert.NotNull(arrived);
        int lines = console.Lines;
        var moved = new RunningDomain(arrived!);
        receiver.ConfirmRunning();
        await sent.WaitAsync(patience);
        source.Domain.Kill();
        return (moved, lines);
    }
}
