using System.Buffers.Binary;

namespace Remus.Simulation;

/// <summary>
/// The simulated guest's vCPU and kernel state, as a real domain's checkpoint carries them: the registers hold the
/// counter the guest is at (it keeps a copy in a register between steps) and its instruction pointer at the safe
/// point; the kernel counts the console writes and knows whether the program exited. <see cref="LoadState"/>
/// validates both blobs and that they agree with the memory already applied (one checkpoint's memory and state, not
/// memory of epoch N with the state of N-1).
/// </summary>
public sealed partial class SimDomain
{
    private const uint VcpuMagic = 0x56434953, KernelMagic = 0x4B4D4953; // "SICV", "SIMK"
    private const ulong SafePointRip = 0x401000;
    private const int VcpuLength = 24, KernelLength = 24;

    private readonly record struct Registers(ulong Rax);
    private readonly record struct KernelObjects(ulong ConsoleWrites, bool Exited);

    private Registers _vcpu;
    private KernelObjects _kernel;
    private bool _loadedExited;

    public byte[] CaptureVcpuState()
    {
        RequireStopped();
        var b = new byte[VcpuLength];
        BinaryPrimitives.WriteUInt32LittleEndian(b, VcpuMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), VcpuLength);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), SafePointRip);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(16), _vcpu.Rax);
        return b;
    }

    public byte[] CaptureKernelState()
    {
        RequireStopped();
        var b = new byte[KernelLength];
        BinaryPrimitives.WriteUInt32LittleEndian(b, KernelMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(4), _kernel.Exited ? 1u : 0u);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), _config.Fingerprint);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(16), _kernel.ConsoleWrites);
        return b;
    }

    public void LoadState(ReadOnlySpan<byte> vcpuState, ReadOnlySpan<byte> kernelState)
    {
        if (vcpuState.Length != VcpuLength || BinaryPrimitives.ReadUInt32LittleEndian(vcpuState) != VcpuMagic
            || BinaryPrimitives.ReadUInt32LittleEndian(vcpuState[4..]) != VcpuLength
            || BinaryPrimitives.ReadUInt64LittleEndian(vcpuState[8..]) != SafePointRip)
            throw new InvalidDataException("corrupt vCPU state in the checkpoint");
        if (kernelState.Length != KernelLength || BinaryPrimitives.ReadUInt32LittleEndian(kernelState) != KernelMagic
            || BinaryPrimitives.ReadUInt32LittleEndian(kernelState[4..]) > 1)
            throw new InvalidDataException("corrupt kernel state in the checkpoint");
        if (BinaryPrimitives.ReadUInt64LittleEndian(kernelState[8..]) != _config.Fingerprint)
            throw new InvalidDataException("the checkpoint's kernel state belongs to another guest");
        var vcpu = new Registers(BinaryPrimitives.ReadUInt64LittleEndian(vcpuState[16..]));
        var kernel = new KernelObjects(BinaryPrimitives.ReadUInt64LittleEndian(kernelState[16..]), BinaryPrimitives.ReadUInt32LittleEndian(kernelState[4..]) == 1);
        ulong memory = Counter;
        if (vcpu.Rax != memory || kernel.ConsoleWrites != memory)
            throw new InvalidDataException($"incoherent checkpoint: memory says n={memory}, the registers n={vcpu.Rax}, the kernel {kernel.ConsoleWrites} lines");
        _vcpu = vcpu;
        _kernel = kernel;
        _loadedExited = kernel.Exited;
    }

    /// <summary>Null when memory, registers and kernel are one checkpoint's; else what disagrees.</summary>
    public string? Incoherence()
    {
        ulong memory = Counter;
        if (memory == ulong.MaxValue) return "the counter page is not this guest's";
        if (_vcpu.Rax != memory || _kernel.ConsoleWrites != memory)
            return $"memory says n={memory}, the registers n={_vcpu.Rax}, the kernel {_kernel.ConsoleWrites} lines (memory and state of different checkpoints)";
        return VerifyImage();
    }

    private void RequireStopped()
    {
        lock (_lock)
            if (!_parked && _state != Remus.Sandbox.DomainState.Exited)
                throw new InvalidOperationException("the guest is running: pause it first");
    }
}
