using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text.Unicode;

namespace Remus.Checkpoint.Stream;

/// <summary>
/// The stream header: what the stream is (magic, version, page size, architecture, flags) and the domain's
/// configuration, an opaque UTF-8 JSON document that this layer carries but never interprets.
/// </summary>
public sealed class StreamHeader
{
    /// <summary>Creates a header to write.</summary>
    /// <param name="domainConfig">The domain configuration (UTF-8 JSON, at most <see cref="StreamFormat.MaxConfigBytes"/>).</param>
    /// <param name="architecture">The guest architecture.</param>
    public StreamHeader(ReadOnlyMemory<byte> domainConfig, StreamArchitecture architecture = StreamArchitecture.X86_64)
    {
        if (domainConfig.Length > StreamFormat.MaxConfigBytes)
            throw new ArgumentException(
                $"domain configuration is {domainConfig.Length} bytes; the stream carries at most {StreamFormat.MaxConfigBytes}",
                nameof(domainConfig));
        if (!Utf8.IsValid(domainConfig.Span))
            throw new ArgumentException("domain configuration is not valid UTF-8", nameof(domainConfig));
        if (!Enum.IsDefined(architecture))
            throw new ArgumentException($"unknown architecture code {(uint)architecture}", nameof(architecture));
        DomainConfig = domainConfig;
        Architecture = architecture;
    }

    /// <summary>The domain configuration document (UTF-8 JSON, opaque to the stream layer).</summary>
    public ReadOnlyMemory<byte> DomainConfig { get; }

    /// <summary>The guest architecture.</summary>
    public StreamArchitecture Architecture { get; }

    /// <summary>Flags as read from a stream. When writing, the writer sets them from its options.</summary>
    public StreamFlags Flags { get; init; }

    /// <summary>
    /// The format version. When writing: the lowest that carries what the stream will hold — 1 (the default) for a
    /// save file or a migration, which older readers then still read; 2 for a Remus stream, whose RELEASE and EXIT
    /// records version 1 lacks. When reading: as read (1 or 2).
    /// </summary>
    public uint Version
    {
        get => _version;
        init
        {
            if (value is < StreamFormat.MinVersion or > StreamFormat.Version)
                throw new ArgumentOutOfRangeException(nameof(value), value, $"this build writes versions {StreamFormat.MinVersion} to {StreamFormat.Version}");
            _version = value;
        }
    }

    private readonly uint _version = StreamFormat.MinVersion;

    /// <summary>The page size (always <see cref="StreamFormat.PageSize"/>: other sizes are refused).</summary>
    public int PageSize => StreamFormat.PageSize;

    /// <summary>Number of bytes the header occupies in a stream with this configuration.</summary>
    public int EncodedLength => EncodedLengthFor(DomainConfig.Length);

    internal static int EncodedLengthFor(int configLength) =>
        StreamFormat.HeaderFixedSize + configLength + StreamFormat.PaddingFor(configLength) + sizeof(ulong);

    /// <summary>Encodes the whole header, checksum included, into a new array.</summary>
    internal byte[] Encode(StreamFlags flags)
    {
        int configLength = DomainConfig.Length;
        var buffer = new byte[EncodedLengthFor(configLength)];
        Span<byte> b = buffer;
        StreamFormat.Magic.CopyTo(b);
        BinaryPrimitives.WriteUInt32LittleEndian(b[8..], Version);
        BinaryPrimitives.WriteUInt32LittleEndian(b[12..], StreamFormat.PageSize);
        BinaryPrimitives.WriteUInt32LittleEndian(b[16..], (uint)Architecture);
        BinaryPrimitives.WriteUInt32LittleEndian(b[20..], (uint)flags);
        BinaryPrimitives.WriteUInt32LittleEndian(b[24..], (uint)configLength);
        // b[28..32] reserved, zero; padding after the config is zero.
        DomainConfig.Span.CopyTo(b[StreamFormat.HeaderFixedSize..]);
        int checksumAt = buffer.Length - sizeof(ulong);
        BinaryPrimitives.WriteUInt64LittleEndian(b[checksumAt..], XxHash3.HashToUInt64(b[..checksumAt]));
        return buffer;
    }

    /// <summary>Reads and validates a header; reports the first problem found, in stream order.</summary>
    internal static StreamHeader Read(RecordInput input)
    {
        Span<byte> fixedPart = stackalloc byte[StreamFormat.HeaderFixedSize];
        // The magic is checked before the rest is required, so that a short foreign stream is "not a stream".
        input.ReadExactly(fixedPart[..8], "stream header");
        if (!fixedPart[..8].SequenceEqual(StreamFormat.Magic))
            throw new CheckpointStreamException(CheckpointStreamError.NotAStream,
                $"not a Remus checkpoint stream (starts with {Convert.ToHexString(fixedPart[..8])}, expected the magic \"REMUSCKP\")");
        input.ReadExactly(fixedPart[8..], "stream header");

        uint version = BinaryPrimitives.ReadUInt32LittleEndian(fixedPart[8..]);
        if (version is < StreamFormat.MinVersion or > StreamFormat.Version)
            throw new CheckpointStreamException(CheckpointStreamError.Unsupported,
                $"unsupported stream version {version} (this build reads {StreamFormat.MinVersion} to {StreamFormat.Version})");
        uint configLength = BinaryPrimitives.ReadUInt32LittleEndian(fixedPart[24..]);
        if (configLength > StreamFormat.MaxConfigBytes)
            throw new CheckpointStreamException(CheckpointStreamError.InvalidRecord,
                $"stream header: domain configuration length {configLength} exceeds the limit of {StreamFormat.MaxConfigBytes}");

        int total = EncodedLengthFor((int)configLength);
        var buffer = new byte[total];
        fixedPart.CopyTo(buffer);
        input.ReadExactly(buffer.AsSpan(StreamFormat.HeaderFixedSize), "stream header");
        int checksumAt = total - sizeof(ulong);
        ulong expected = BinaryPrimitives.ReadUInt64LittleEndian(buffer.AsSpan(checksumAt));
        ulong actual = XxHash3.HashToUInt64(buffer.AsSpan(0, checksumAt));
        if (expected != actual)
            throw new CheckpointStreamException(CheckpointStreamError.ChecksumMismatch,
                $"stream header checksum mismatch (stored {expected:x16}, computed {actual:x16})");
        // Fields are judged once the checksum says the bytes are what the writer wrote.
        uint pageSize = BinaryPrimitives.ReadUInt32LittleEndian(fixedPart[12..]);
        if (pageSize != StreamFormat.PageSize)
            throw new CheckpointStreamException(CheckpointStreamError.Unsupported,
                $"unsupported page size {pageSize} (this build handles {StreamFormat.PageSize})");
        var architecture = (StreamArchitecture)BinaryPrimitives.ReadUInt32LittleEndian(fixedPart[16..]);
        if (!Enum.IsDefined(architecture))
            throw new CheckpointStreamException(CheckpointStreamError.Unsupported,
                $"unsupported architecture code {(uint)architecture} (this build handles {(uint)StreamArchitecture.X86_64} = x86-64)");
        var flags = (StreamFlags)BinaryPrimitives.ReadUInt32LittleEndian(fixedPart[20..]);
        if ((flags & ~StreamFlags.Compressed) != 0)
            throw new CheckpointStreamException(CheckpointStreamError.Unsupported,
                $"unsupported stream flags 0x{(uint)flags:x} (this build knows 0x{(uint)StreamFlags.Compressed:x})");
        if (BinaryPrimitives.ReadUInt32LittleEndian(fixedPart[28..]) != 0)
            throw new CheckpointStreamException(CheckpointStreamError.InvalidRecord, "stream header: reserved field is not zero");
        int configEnd = StreamFormat.HeaderFixedSize + (int)configLength;
        if (buffer.AsSpan(configEnd, checksumAt - configEnd).ContainsAnyExcept((byte)0))
            throw new CheckpointStreamException(CheckpointStreamError.InvalidRecord, "stream header: non-zero padding after the domain configuration");
        var config = buffer.AsMemory(StreamFormat.HeaderFixedSize, (int)configLength);
        if (!Utf8.IsValid(config.Span))
            throw new CheckpointStreamException(CheckpointStreamError.InvalidRecord, "stream header: domain configuration is not valid UTF-8");
        return new StreamHeader(config, architecture) { Flags = flags, Version = version };
    }
}
