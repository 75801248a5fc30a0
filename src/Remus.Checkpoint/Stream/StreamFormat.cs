namespace Remus.Checkpoint.Stream;

/// <summary>
/// Constants of the Remus checkpoint stream, version 2 (version 1 streams, which lack the Remus handshake and
/// protocol records, are still read). The byte layout is specified record by record in
/// <c>docs/stream-format.md</c>; every integer is little-endian.
/// </summary>
public static class StreamFormat
{
    /// <summary>The first 8 bytes of every stream: ASCII "REMUSCKP".</summary>
    public static ReadOnlySpan<byte> Magic => "REMUSCKP"u8;

    /// <summary>The newest format version this build writes (a Remus stream; saves and migrations still write 1).</summary>
    public const uint Version = 2;

    /// <summary>The oldest format version this build reads (version 1: no HELLO, RELEASE, RELEASED, TAKEOVER, EXIT).</summary>
    public const uint MinVersion = 1;

    /// <summary>Guest page size in bytes; the only one this build handles.</summary>
    public const int PageSize = 4096;

    /// <summary>Size of the fixed part of the stream header, before the domain configuration.</summary>
    public const int HeaderFixedSize = 32;

    /// <summary>Size of a record header in a version 1 stream and on the back channel (type:u32, length:u32).</summary>
    public const int RecordHeaderSize = 8;

    /// <summary>
    /// Size of a record header in a version 2 forward stream: type:u32, length:u32, check:u32 (XXH32 of the first 8
    /// bytes), reserved:u32 (zero). The check is verified before the length is trusted.
    /// </summary>
    public const int CheckedRecordHeaderSize = 16;

    /// <summary>Records are padded with zero bytes to a multiple of this.</summary>
    public const int Alignment = 8;

    /// <summary>Largest domain configuration document accepted in the header (1 MiB).</summary>
    public const int MaxConfigBytes = 1 << 20;

    /// <summary>Most pages one PAGE_DATA record may carry.</summary>
    public const int MaxPagesPerRecord = 1024;

    /// <summary>Default (and recommended) number of pages per PAGE_DATA record written.</summary>
    public const int DefaultPagesPerRecord = 512;

    /// <summary>Largest valid page frame number: PFNs have 52 bits.</summary>
    public const ulong MaxPfn = (1UL << 52) - 1;

    /// <summary>Fixed part of a PAGE_DATA body: count:u32, reserved:u32.</summary>
    public const int PageDataFixedSize = 8;

    /// <summary>Largest PAGE_DATA body: the fixed part and, per page, a descriptor (8), a length (4) and at most a page.</summary>
    public const int MaxPageDataLength = PageDataFixedSize + MaxPagesPerRecord * (8 + 4 + PageSize);

    /// <summary>Largest VCPU_STATE body (vcpu id, reserved, opaque state): 1 MiB.</summary>
    public const int MaxVcpuStateLength = 1 << 20;

    /// <summary>
    /// Most VCPU_STATE records one epoch may carry, whatever a reader's options say (a domain's vCPUs are its
    /// threads; KVM's own limit on x86 is 1024 per VM on most kernels).
    /// </summary>
    public const int MaxVcpuStatesPerEpoch = 1024;

    /// <summary>Largest KERNEL_STATE body (opaque state): 256 MiB.</summary>
    public const int MaxKernelStateLength = 256 << 20;

    /// <summary>Body length of CHECKPOINT_END: epoch:u64, checksum:u64.</summary>
    public const int CheckpointEndLength = 16;

    /// <summary>Body length of HEARTBEAT: timestamp:u64 (Unix time in nanoseconds, UTC).</summary>
    public const int HeartbeatLength = 8;

    /// <summary>Body length of ACK: epoch:u64, checksum:u64.</summary>
    public const int AckLength = 16;

    /// <summary>Body length of HELLO: version:u32, reserved:u32, timeout_ms:u64.</summary>
    public const int HelloLength = 16;

    /// <summary>Largest RELEASE body (the primary's reason, UTF-8).</summary>
    public const int MaxReleaseLength = 1024;

    /// <summary>Fixed part of an EXIT body: status:i32, reserved:u32; the program's last output follows.</summary>
    public const int ExitFixedLength = 8;

    /// <summary>Largest EXIT body (the last epoch's console output): 64 MiB.</summary>
    public const int MaxExitLength = 64 << 20;

    /// <summary>Smallest VOLUME_OPS body (the replica's batch framing starts with at least 8 bytes).</summary>
    public const int MinVolumeOpsLength = 8;

    /// <summary>Largest VOLUME_OPS body: <see cref="Remus.Sandbox.Volumes.IVolumeReplica.MaxBatchBytes"/> (4 MiB + 64 KiB).</summary>
    public const int MaxVolumeOpsLength = global::Remus.Sandbox.Volumes.IVolumeReplica.MaxBatchBytes;

    /// <summary>Largest body a record of <paramref name="type"/> may have, or -1 when the type is unknown.</summary>
    public static long MaxBodyLength(RecordType type) => type switch
    {
        RecordType.End => 0,
        RecordType.PageData => MaxPageDataLength,
        RecordType.VcpuState => MaxVcpuStateLength,
        RecordType.KernelState => MaxKernelStateLength,
        RecordType.CheckpointEnd => CheckpointEndLength,
        RecordType.Heartbeat => HeartbeatLength,
        RecordType.Ack => AckLength,
        RecordType.Hello => HelloLength,
        RecordType.Release => MaxReleaseLength,
        RecordType.Released or RecordType.Takeover => 0,
        RecordType.Exit => MaxExitLength,
        RecordType.VolumeOps => MaxVolumeOpsLength,
        _ => -1,
    };

    /// <summary>The record's name as the format documentation spells it, e.g. "PAGE_DATA".</summary>
    public static string Name(RecordType type) => type switch
    {
        RecordType.End => "END",
        RecordType.PageData => "PAGE_DATA",
        RecordType.VcpuState => "VCPU_STATE",
        RecordType.KernelState => "KERNEL_STATE",
        RecordType.CheckpointEnd => "CHECKPOINT_END",
        RecordType.Heartbeat => "HEARTBEAT",
        RecordType.Ack => "ACK",
        RecordType.Hello => "HELLO",
        RecordType.Release => "RELEASE",
        RecordType.Released => "RELEASED",
        RecordType.Takeover => "TAKEOVER",
        RecordType.Exit => "EXIT",
        RecordType.VolumeOps => "VOLUME_OPS",
        _ => $"0x{(uint)type:x}",
    };

    /// <summary>The encoding's name as the format documentation spells it, e.g. "XOR_LZ4".</summary>
    public static string Name(PageEncoding encoding) => encoding switch
    {
        PageEncoding.Raw => "RAW",
        PageEncoding.Zero => "ZERO",
        PageEncoding.Unchanged => "UNCHANGED",
        PageEncoding.Lz4 => "LZ4",
        PageEncoding.XorLz4 => "XOR_LZ4",
        _ => $"0x{(uint)encoding:x}",
    };

    /// <summary>Number of zero bytes that pad a body of <paramref name="length"/> bytes to the alignment.</summary>
    public static int PaddingFor(long length) => (int)((Alignment - (length & (Alignment - 1))) & (Alignment - 1));
}

/// <summary>Record types. Every type not listed is an error for a reader (records are never skipped).</summary>
public enum RecordType : uint
{
    /// <summary>End of stream (graceful). Empty body.</summary>
    End = 0,
    /// <summary>A batch of pages: PFNs, per-page encodings and lengths, then page data.</summary>
    PageData = 1,
    /// <summary>Opaque state of one vCPU.</summary>
    VcpuState = 2,
    /// <summary>Opaque state of the VMM-side "kernel" (fd table, files, clocks, console…).</summary>
    KernelState = 3,
    /// <summary>Closes an epoch: its number and the checksum of all its bytes.</summary>
    CheckpointEnd = 4,
    /// <summary>Liveness: the sender's clock. Allowed anywhere after the header, in both directions.</summary>
    Heartbeat = 5,
    /// <summary>Back channel only (backup → primary): an epoch was received, verified and stored.</summary>
    Ack = 6,
    /// <summary>
    /// Back channel only, first record (version 2): the backup introduces itself with the format version it speaks
    /// and its silence timeout, which the primary adopts for its ack wait, its lease and its heartbeats.
    /// </summary>
    Hello = 7,
    /// <summary>
    /// Forward stream, between epochs, last record (version 2): the primary gave up on its backup ("you are released,
    /// do not take over"). The backup discards its copy and answers RELEASED. Body: the reason, UTF-8 (may be empty).
    /// </summary>
    Release = 8,
    /// <summary>Back channel (version 2): the backup read RELEASE and discarded its copy; it will never take over. Empty body.</summary>
    Released = 9,
    /// <summary>
    /// Back channel (version 2): the backup takes over, written before it re-emits output or runs the domain.
    /// A primary that reads it is fenced: it drops its held output and stops its domain for good. Empty body.
    /// </summary>
    Takeover = 10,
    /// <summary>
    /// Forward stream, alone in an epoch closed by CHECKPOINT_END (version 2): the program exited with this status,
    /// and this was its last output. Acked like an epoch; the primary releases the output only after the ack.
    /// </summary>
    Exit = 11,
    /// <summary>
    /// Inside an epoch, after its pages: one batch of the domain's volume operations (issue 10), opaque to the stream
    /// layer (<see cref="Remus.Sandbox.Volumes.IVolumeReplica"/>). Applied in stream order, only once the epoch's
    /// CHECKPOINT_END verified. Any stream version (a reader that predates it refuses it as an unknown type).
    /// </summary>
    VolumeOps = 12,
}

/// <summary>How one page of a PAGE_DATA record is encoded (4 bits in the page descriptor).</summary>
public enum PageEncoding : byte
{
    /// <summary>4096 bytes of page content.</summary>
    Raw = 0,
    /// <summary>The page is all zero bytes; no data.</summary>
    Zero = 1,
    /// <summary>The page equals the receiver's current copy; no data, nothing to do.</summary>
    Unchanged = 2,
    /// <summary>The page content compressed as one LZ4 block (1..4095 bytes) that decodes to exactly 4096 bytes.</summary>
    Lz4 = 3,
    /// <summary>LZ4 block (1..4095 bytes) of the XOR of the new content with the receiver's current copy of the page.</summary>
    XorLz4 = 4,
}

/// <summary>Architecture codes of the stream header: the ELF <c>e_machine</c> numbers.</summary>
public enum StreamArchitecture : uint
{
    /// <summary>x86-64 (ELF EM_X86_64 = 62).</summary>
    X86_64 = 62,
}

/// <summary>Flags of the stream header. Bits not defined here must be zero; a reader refuses others.</summary>
[Flags]
public enum StreamFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>The sender compresses pages (LZ4, XOR deltas). Informational: a reader accepts every encoding anyway.</summary>
    Compressed = 1,
}
