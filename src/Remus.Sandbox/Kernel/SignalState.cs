namespace Remus.Sandbox.Kernel;

/// <summary>
/// Signal dispositions, the blocked mask and the alternate stack, as the program set them. They are recorded and
/// reported back faithfully; handlers are not run (a signal that would run one ends the program, and the VMM log
/// says so), since a domain has one thread and nothing outside it can signal it. A stop signal pauses the domain.
/// </summary>
internal sealed class SignalState
{
    public const int NSig = 64;
    public const int SigActionSize = 32; // handler, flags, restorer, mask (the kernel's struct sigaction)

    public byte[] Actions { get; } = new byte[(NSig + 1) * SigActionSize];
    public ulong Blocked { get; set; }

    /// <summary>Signals raised while blocked; acted on when unblocked.</summary>
    public ulong Pending { get; set; }
    public byte[] AltStack { get; } = new byte[24];

    public ulong Handler(int sig) => BitConverter.ToUInt64(Actions, sig * SigActionSize);

    public Span<byte> Action(int sig) => Actions.AsSpan(sig * SigActionSize, SigActionSize);

    public static bool DefaultIgnores(int sig) => sig is 17 or 18 or 23 or 28; // SIGCHLD SIGCONT SIGURG SIGWINCH

    public static bool DefaultStops(int sig) => sig is 19 or 20 or 21 or 22;  // SIGSTOP SIGTSTP SIGTTIN SIGTTOU
}
