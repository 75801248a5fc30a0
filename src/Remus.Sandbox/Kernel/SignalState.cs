using System.Buffers.Binary;
using Remus.Sandbox.Kernel.Signals;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// The process-wide part of signal state (Linux's sighand and signal structs): each signal's disposition, as the
/// kernel's <c>struct sigaction</c> (handler, flags, restorer, mask), and the signals sent to the process as a whole
/// (kill, itimers, SIGEV_SIGNAL timers). Each thread's part is a <see cref="TaskSignals"/>.
/// </summary>
internal sealed class SignalState
{
    public const int NSig = 64;
    public const int SigActionSize = 32; // handler, flags, restorer, mask (the kernel's struct sigaction)

    public const ulong SA_SIGINFO = 4, SA_ONSTACK = 0x08000000, SA_RESTART = 0x10000000, SA_NODEFER = 0x40000000,
        SA_RESETHAND = 0x80000000, SA_RESTORER = 0x04000000;

    public byte[] Actions { get; } = new byte[(NSig + 1) * SigActionSize];

    /// <summary>Signals sent to the process; any thread not blocking one may take it.</summary>
    public PendingSignals Pending { get; } = new();

    public ulong Handler(int sig) => BitConverter.ToUInt64(Actions, sig * SigActionSize);

    public ulong Flags(int sig) => BitConverter.ToUInt64(Actions, sig * SigActionSize + 8);

    public ulong Restorer(int sig) => BitConverter.ToUInt64(Actions, sig * SigActionSize + 16);

    public ulong Mask(int sig) => BitConverter.ToUInt64(Actions, sig * SigActionSize + 24);

    public void SetHandler(int sig, ulong handler) =>
        BinaryPrimitives.WriteUInt64LittleEndian(Actions.AsSpan(sig * SigActionSize), handler);

    public Span<byte> Action(int sig) => Actions.AsSpan(sig * SigActionSize, SigActionSize);

    public static bool DefaultIgnores(int sig) => sig is 17 or 18 or 23 or 28; // SIGCHLD SIGCONT SIGURG SIGWINCH

    public static bool DefaultStops(int sig) => sig is 19 or 20 or 21 or 22;  // SIGSTOP SIGTSTP SIGTTIN SIGTTOU

    /// <summary>Whether <paramref name="sig"/> would be thrown away on arrival (ignored, explicitly or by default).</summary>
    public bool Ignored(int sig)
    {
        ulong h = Handler(sig);
        return h == 1 || (h == 0 && DefaultIgnores(sig));
    }
}
