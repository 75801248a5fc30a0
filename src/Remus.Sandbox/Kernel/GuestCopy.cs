using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Kernel;

/// <summary>
/// Copy-style access to guest memory for the readiness calls, never holding a span into it: when guest memory
/// becomes virtual memory with its own copy calls of these names, those take over and this goes.
/// </summary>
internal static class GuestCopy
{
    /// <summary>Copies guest memory at <paramref name="addr"/> into <paramref name="dest"/> (EFAULT if it is not all there).</summary>
    public static void Read(this GuestMemory memory, ulong addr, Span<byte> dest) => memory.Span(addr, dest.Length).CopyTo(dest);
}
