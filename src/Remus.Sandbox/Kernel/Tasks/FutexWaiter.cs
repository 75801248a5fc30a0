namespace Remus.Sandbox.Kernel.Tasks;

/// <summary>A thread waiting in futex: on its address (which a requeue may change) for a wake matching its bitset.</summary>
internal sealed class FutexWaiter(GuestTask task, ulong address, uint bitset) : IDisposable
{
    public GuestTask Task { get; } = task;
    public ulong Address { get; set; } = address;
    public uint Bitset { get; } = bitset;

    /// <summary>Set by the waker, under the kernel lock; the event tells the sleeping thread.</summary>
    public bool Woken { get; private set; }
    public ManualResetEvent Event { get; } = new(false);

    public void Wake()
    {
        Woken = true;
        Event.Set();
    }

    public void Dispose() => Event.Dispose();
}
