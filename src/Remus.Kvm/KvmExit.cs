namespace Remus.Kvm;

/// <summary>Direction of a port I/O exit.</summary>
public enum KvmIoDirection : byte
{
    In = 0,
    Out = 1,
}

/// <summary>
/// Why KVM_RUN returned (<see cref="KvmVcpu.Run"/>): a copy of the kvm_run fields that matter for
/// <see cref="Reason"/>. Fields of other exit kinds are zero. Data of I/O and MMIO exits stays in the shared page:
/// <see cref="KvmVcpu.GetIoData"/>, <see cref="KvmVcpu.MmioData"/>.
/// </summary>
public readonly struct KvmExit
{
    public KvmExitReason Reason { get; init; }

    // KVM_EXIT_IO
    public KvmIoDirection IoDirection { get; init; }
    /// <summary>Bytes per access (1, 2, 4).</summary>
    public byte IoSize { get; init; }
    public ushort IoPort { get; init; }
    /// <summary>Number of accesses (more than 1 for rep ins/outs).</summary>
    public uint IoCount { get; init; }
    /// <summary>Offset of the data from the start of kvm_run.</summary>
    public ulong IoDataOffset { get; init; }

    // KVM_EXIT_MMIO
    public ulong MmioAddress { get; init; }
    public uint MmioLength { get; init; }
    public bool MmioIsWrite { get; init; }

    // KVM_EXIT_FAIL_ENTRY
    public ulong HardwareEntryFailureReason { get; init; }
    public uint FailEntryCpu { get; init; }

    // KVM_EXIT_UNKNOWN
    public ulong HardwareExitReason { get; init; }

    // KVM_EXIT_EXCEPTION
    public uint ExceptionVector { get; init; }
    public uint ExceptionErrorCode { get; init; }

    // KVM_EXIT_INTERNAL_ERROR
    /// <summary>KVM_INTERNAL_ERROR_*; the data words are in <c>vcpu.RunData.Exit.Internal</c>.</summary>
    public uint InternalSuberror { get; init; }
    public uint InternalNdata { get; init; }

    // KVM_EXIT_SYSTEM_EVENT
    public uint SystemEventType { get; init; }

    /// <summary>KVM_RUN returned EINTR (kicked by a signal or immediate_exit).</summary>
    public bool Interrupted => Reason == KvmExitReason.Intr;

    public static KvmExit Intr => new() { Reason = KvmExitReason.Intr };

    /// <summary>Reads the exit out of a kvm_run page.</summary>
    public static KvmExit From(in KvmRun run)
    {
        var reason = run.ExitReason;
        switch (reason)
        {
            case KvmExitReason.Io:
                return new KvmExit
                {
                    Reason = reason,
                    IoDirection = (KvmIoDirection)run.Exit.Io.Direction,
                    IoSize = run.Exit.Io.Size,
                    IoPort = run.Exit.Io.Port,
                    IoCount = run.Exit.Io.Count,
                    IoDataOffset = run.Exit.Io.DataOffset,
                };
            case KvmExitReason.Mmio:
                return new KvmExit
                {
                    Reason = reason,
                    MmioAddress = run.Exit.Mmio.PhysAddr,
                    MmioLength = run.Exit.Mmio.Len,
                    MmioIsWrite = run.Exit.Mmio.IsWrite != 0,
                };
            case KvmExitReason.FailEntry:
                return new KvmExit
                {
                    Reason = reason,
                    HardwareEntryFailureReason = run.Exit.FailEntry.HardwareEntryFailureReason,
                    FailEntryCpu = run.Exit.FailEntry.Cpu,
                };
            case KvmExitReason.Unknown:
                return new KvmExit { Reason = reason, HardwareExitReason = run.Exit.Hw.HardwareExitReason };
            case KvmExitReason.Exception:
                return new KvmExit { Reason = reason, ExceptionVector = run.Exit.Ex.Exception, ExceptionErrorCode = run.Exit.Ex.ErrorCode };
            case KvmExitReason.InternalError:
                return new KvmExit { Reason = reason, InternalSuberror = run.Exit.Internal.Suberror, InternalNdata = run.Exit.Internal.Ndata };
            case KvmExitReason.SystemEvent:
                return new KvmExit { Reason = reason, SystemEventType = run.Exit.SystemEvent.Type };
            default:
                return new KvmExit { Reason = reason };
        }
    }

    public override string ToString() => Reason switch
    {
        KvmExitReason.Io => $"IO {(IoDirection == KvmIoDirection.Out ? "out" : "in")} port 0x{IoPort:x} size {IoSize} count {IoCount}",
        KvmExitReason.Mmio => $"MMIO {(MmioIsWrite ? "write" : "read")} 0x{MmioAddress:x} len {MmioLength}",
        KvmExitReason.FailEntry => $"FAIL_ENTRY hardware reason 0x{HardwareEntryFailureReason:x} cpu {FailEntryCpu}",
        KvmExitReason.Unknown => $"UNKNOWN hardware reason 0x{HardwareExitReason:x}",
        KvmExitReason.Exception => $"EXCEPTION vector {ExceptionVector} error code 0x{ExceptionErrorCode:x}",
        KvmExitReason.InternalError => $"INTERNAL_ERROR suberror {InternalSuberror} ndata {InternalNdata}",
        KvmExitReason.SystemEvent => $"SYSTEM_EVENT type {SystemEventType}",
        KvmExitReason.Intr => "INTR (interrupted)",
        _ => Reason.ToString().ToUpperInvariant(),
    };
}
