namespace Remus.Sandbox.Platform;

/// <summary>What the ptrace platform needs for a stub process with several threads.</summary>
internal static partial class Libc
{
    internal const long SYS_tgkill = 234;
    internal const long PTRACE_CONT = 7;

    /// <summary>Sends <paramref name="sig"/> to thread <paramref name="tid"/> of process <paramref name="tgid"/> only.</summary>
    internal static int tgkill(int tgid, int tid, int sig) => (int)syscall(SYS_tgkill, tgid, tid, sig);
}
