namespace Remus.Checkpoint.Stream;

/// <summary>What is wrong with a checkpoint stream; lets a receiver tell a dead peer from a corrupt stream.</summary>
public enum CheckpointStreamError
{
    /// <summary>The stream ended before a complete header, record or END (e.g. the sender died).</summary>
    Truncated,
    /// <summary>The stream does not start with the Remus magic.</summary>
    NotAStream,
    /// <summary>Well-formed but not readable by this build: version, page size, architecture or flags.</summary>
    Unsupported,
    /// <summary>A record type that this version does not define (never skipped).</summary>
    UnknownRecord,
    /// <summary>A record whose length or content breaks the format (absurd length, bad field, bad compressed page).</summary>
    InvalidRecord,
    /// <summary>The header's or an epoch's checksum does not match its bytes.</summary>
    ChecksumMismatch,
    /// <summary>Records in an order the protocol forbids (epoch numbers going back, END inside an epoch, …).</summary>
    Protocol,
    /// <summary>A verified epoch does not fit the target it is applied to (a PFN beyond its pages).</summary>
    TargetMismatch,
}

/// <summary>A checkpoint stream was refused. Nothing of the epoch being read has been applied.</summary>
public sealed class CheckpointStreamException : Exception
{
    /// <summary>Creates the exception.</summary>
    public CheckpointStreamException(CheckpointStreamError error, string message, Exception? inner = null)
        : base(message, inner) => Error = error;

    /// <summary>The class of the problem.</summary>
    public CheckpointStreamError Error { get; }
}
