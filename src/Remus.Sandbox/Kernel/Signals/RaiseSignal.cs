using Remus.Sandbox.Kernel.Signals;

namespace Remus.Sandbox.Kernel;

/// <summary>Signals the kernel itself sends the program (SIGPIPE from a write to a pipe or socket with no reader).</summary>
internal sealed partial class SandboxKernel
{
    /// <summary>
    /// Sends <paramref name="sig"/> to the calling thread, as Linux's send_sig(sig, current, 0) does for SIGPIPE
    /// (si_code SI_USER, si_pid the program's own). Call it while serving a system call: it is acted on when the call
    /// returns (a default SIGPIPE ends the program with status 141).
    /// </summary>
    internal void RaiseSignal(int sig) => SendSignal(SigInfo.FromProcess(sig, SigInfo.SI_USER, Pid, 0), toTask: true);
}
