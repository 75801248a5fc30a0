using System.Diagnostics;

namespace Remus.Soak;

/// <summary>One busy process per core (`sh -c 'while :; do :; done'`), for rounds on a loaded machine; each is killed by its own pid.</summary>
internal sealed class CpuHog : IDisposable
{
    private readonly List<Process> _busy = [];

    public CpuHog(int processes)
    {
        for (int i = 0; i < processes; i++)
        {
            var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("while :; do :; done");
            _busy.Add(Process.Start(psi)!);
        }
    }

    public IEnumerable<int> Pids => _busy.Select(p => p.Id);

    public void Dispose()
    {
        foreach (var p in _busy)
        {
            try { if (!p.HasExited) p.Kill(entireProcessTree: false); } catch (InvalidOperationException) { }
            p.WaitForExit(5000);
            p.Dispose();
        }
    }
}
