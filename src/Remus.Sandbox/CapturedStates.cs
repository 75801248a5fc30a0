namespace Remus.Sandbox;

/// <summary>
/// A paused domain's vCPU states and kernel state (what <see cref="ICheckpointable.CaptureStates()"/> returns), captured
/// into buffers kept from checkpoint to checkpoint: the Remus epoch loop takes one every epoch, and an allocation per
/// epoch adds up to garbage collections, which stop every thread, the guest's too (issue 14). The spans are valid
/// until the next capture into the same object.
/// </summary>
public sealed class CapturedStates
{
    private byte[][] _vcpus = [];
    private int[] _vcpuLengths = [];
    private byte[] _kernel = [];
    private int _kernelLength;

    /// <summary>vCPU states captured: the first thread's first, then the others in the kernel's order.</summary>
    public int VcpuCount { get; private set; }

    /// <summary>The <paramref name="i"/>-th thread's vCPU state (<see cref="Platform.VcpuStateFormat"/>).</summary>
    public ReadOnlySpan<byte> Vcpu(int i)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)i, (uint)VcpuCount, nameof(i));
        return _vcpus[i].AsSpan(0, _vcpuLengths[i]);
    }

    /// <summary>The kernel state.</summary>
    public ReadOnlySpan<byte> Kernel => _kernel.AsSpan(0, _kernelLength);

    /// <summary>
    /// Bytes the platform's thread allocated for the last capture (its vCPU's thread, where the state is read), or -1
    /// if the capture was not made there (several threads, or a domain without this path). For the tests of issue 14.
    /// </summary>
    public long AllocatedOnVcpuThread { get; internal set; } = -1;

    /// <summary>Starts a capture of <paramref name="count"/> vCPU states.</summary>
    public void Begin(int count)
    {
        if (count > _vcpus.Length)
        {
            Array.Resize(ref _vcpus, count);
            Array.Resize(ref _vcpuLengths, count);
            for (int i = 0; i < count; i++) _vcpus[i] ??= [];
        }
        VcpuCount = count;
        _kernelLength = 0;
        AllocatedOnVcpuThread = -1;
    }

    /// <summary>Room for the <paramref name="i"/>-th vCPU state, of exactly <paramref name="length"/> bytes (grown only past its largest yet).</summary>
    public Span<byte> VcpuBuffer(int i, int length)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)i, (uint)VcpuCount, nameof(i));
        if (_vcpus[i].Length < length) _vcpus[i] = new byte[length];
        _vcpuLengths[i] = length;
        return _vcpus[i].AsSpan(0, length);
    }

    /// <summary>Copies <paramref name="state"/> in as the kernel state (grown only past its largest yet).</summary>
    public void SetKernel(ReadOnlySpan<byte> state)
    {
        if (_kernel.Length < state.Length) _kernel = new byte[Math.Max(state.Length, 2 * _kernel.Length)];
        state.CopyTo(_kernel);
        _kernelLength = state.Length;
    }

    /// <summary>Takes a capture made the allocating way (<see cref="ICheckpointable.CaptureStates()"/>).</summary>
    public void Set(IReadOnlyList<byte[]> vcpus, byte[] kernel)
    {
        Begin(vcpus.Count);
        for (int i = 0; i < vcpus.Count; i++) vcpus[i].CopyTo(VcpuBuffer(i, vcpus[i].Length));
        SetKernel(kernel);
    }
}
