namespace Remus.Sandbox.Volumes;

/// <summary>
/// The operations of a VOLUME_OPS body (docs/stream-format.md, appendix "VOLUME_OPS body"). 1-12 are the journal's
/// (one per <see cref="IVolumeJournal"/> call); 13-16 are the copy's (state, not history: each replaces what is there).
/// </summary>
internal enum VolumeOpKind : byte
{
    Create = 1,
    Write = 2,
    Truncate = 3,
    Fallocate = 4,
    Mkdir = 5,
    Rmdir = 6,
    Unlink = 7,
    Rename = 8,
    Link = 9,
    Symlink = 10,
    Chmod = 11,
    Utimes = 12,
    Reset = 13,
    File = 14,
    Dir = 15,
    Absent = 16,
}

/// <summary>Sizes and bounds of the VOLUME_OPS body format.</summary>
internal static class VolumeOpsFormat
{
    /// <summary>The body's first u32.</summary>
    public const uint Version = 1;

    public const int BodyHeaderBytes = 8, OpHeaderBytes = 8;

    /// <summary>Largest WRITE (uncompressed); longer writes are split.</summary>
    public const int MaxWriteBytes = 1 << 20;

    /// <summary>Largest path (PATH_MAX - 1) and path component (NAME_MAX), in UTF-8 bytes.</summary>
    public const int MaxPathBytes = 4095, MaxNameBytes = 255;

    /// <summary>Largest symlink target (PATH_MAX - 1 bytes).</summary>
    public const int MaxTargetBytes = 4095;

    /// <summary>WRITE flag: the data is one LZ4 block that decodes to the raw length.</summary>
    public const ushort FlagLz4 = 1;

    /// <summary>DIR flag: the listing goes on in the next op, a DIR of the same path.</summary>
    public const ushort FlagMore = 1;

    /// <summary>Highest file size or offset accepted (the kernel's loff_t).</summary>
    public const long MaxFileBytes = long.MaxValue;

    /// <summary>Permission and set-id bits; a mode field holds nothing else.</summary>
    public const uint ModeMask = 0xFFF;
}
