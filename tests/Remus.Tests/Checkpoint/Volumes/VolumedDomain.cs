using Remus.Sandbox;
using Remus.Sandbox.Volumes;
using Remus.Simulation;

namespace Remus.Tests.Checkpoint.Volumes;

/// <summary>
/// The fault-injection tests' simulated guest (<see cref="SimDomain"/>) with volumes: a fake replica, and the
/// loading of a checkpoint's state recorded in the same log, so a test sees where volumes were applied relative to it.
/// </summary>
public sealed class VolumedDomain(SimDomain inner, FakeVolumeReplica volumes) : ICheckpointable
{
    private ICheckpointable Inner => inner;

    public SimDomain Sim => inner;
    public FakeVolumeReplica Fake => volumes;
    public IVolumeReplica? Volumes => volumes;

    public DomainState State => inner.State;
    public int ExitStatus => Inner.ExitStatus;
    public void Pause() => inner.Pause();
    public void Unpause() => inner.Unpause();
    public ulong PageCount => inner.PageCount;
    public ulong ProgramFirstPage => inner.ProgramFirstPage;
    public int DirtyBitmapWords => inner.DirtyBitmapWords;
    public ReadOnlySpan<byte> ReadPage(ulong pfn) => inner.ReadPage(pfn);
    public Span<byte> WritablePage(ulong pfn) => inner.WritablePage(pfn);
    public void StartDirtyLog() => inner.StartDirtyLog();
    public void MarkPopulatedPages(Span<ulong> bitmap) => inner.MarkPopulatedPages(bitmap);
    public void HarvestDirty(Span<ulong> bitmap) => inner.HarvestDirty(bitmap);
    public void SetUntracked(ReadOnlySpan<ulong> bitmap) => inner.SetUntracked(bitmap);
    public byte[] CaptureVcpuState() => inner.CaptureVcpuState();
    public byte[] CaptureKernelState() => inner.CaptureKernelState();
    public IReadOnlyList<byte[]> CaptureVcpuStates() => Inner.CaptureVcpuStates();

    public void LoadState(ReadOnlySpan<byte> vcpuState, ReadOnlySpan<byte> kernelState)
    {
        lock (volumes.Log) volumes.Log.Add("LoadState");
        inner.LoadState(vcpuState, kernelState);
    }

    public void LoadState(IReadOnlyList<byte[]> vcpuStates, ReadOnlySpan<byte> kernelState)
    {
        lock (volumes.Log) volumes.Log.Add("LoadState");
        Inner.LoadState(vcpuStates, kernelState);
    }

    public void Dispose() => inner.Dispose();
}
