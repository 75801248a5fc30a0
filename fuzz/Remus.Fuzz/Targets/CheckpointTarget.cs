using Remus.Checkpoint.Stream;
using Remus.Sandbox.Volumes;

namespace Remus.Fuzz.Targets;

/// <summary>
/// The checkpoint stream reader, every record type, as a receiver takes a stream: header, then each epoch verified,
/// its volume batches judged (<see cref="VolumeReplica.Validate"/>, no disk), its pages applied to an in-memory
/// sink, its vCPU states put in order. Each input is read twice: as it is (checksums as the mutation left them)
/// and with its checksums rewritten (<see cref="StreamChecksums"/>), which reaches the judgement after them.
/// Rule: a refused epoch changes nothing in the sink.
/// </summary>
public static class CheckpointTarget
{
    /// <summary>Pages of the sink; the last one is not accepted (as a sink that holds back a page).</summary>
    public const int SinkPages = 32;

    public static FuzzTarget Target { get; } = new("checkpoint",
        "CheckpointReader header + epochs, Epoch.ValidateVolumes/ApplyTo into a 32-page sink, VcpuStatesInOrder",
        Feed, [typeof(CheckpointStreamException), typeof(InvalidDataException)]);

    private static void Feed(byte[] input)
    {
        Exception? refused = null;
        try
        {
            Read(input);
        }
        catch (Exception e) when (Target.IsRefusal(e))
        {
            refused = e; // most raw mutations (a checksum); the fixed-up copy below goes further
        }
        byte[] fixedUp = StreamChecksums.Fix(input);
        if (!fixedUp.AsSpan().SequenceEqual(input)) Read(fixedUp);
        else if (refused != null) throw refused;
    }

    /// <summary>
    /// The reader's buffering limit: 16 MiB keeps AFL's memory down; REMUS_FUZZ_EPOCH_LIMIT=0 leaves it unlimited, as
    /// a receiver's default is (<c>fuzz/run.sh</c> passes the environment through).
    /// </summary>
    private static readonly long EpochLimit =
        Environment.GetEnvironmentVariable("REMUS_FUZZ_EPOCH_LIMIT") == "0" ? long.MaxValue : 16 << 20;

    public static void Read(byte[] stream)
    {
        var sink = new MemoryPageSink(SinkPages);
        var replica = new VolumeReplica(new FuzzVolumeRoots(2));
        var reader = new CheckpointReader(new MemoryStream(stream, writable: false),
            new CheckpointReaderOptions { MaxEpochBytes = EpochLimit, MaxVcpuStates = 8 });
        reader.ReadHeader();
        while (reader.ReadEpoch() is { } epoch)
        {
            using (epoch)
            {
                foreach (var _ in epoch.Pages) { }
                byte[] before = sink.Snapshot();
                try
                {
                    epoch.ValidateVolumes(replica);
                    epoch.ApplyTo(sink);
                }
                catch (Exception e) when (Target.IsRefusal(e))
                {
                    if (!sink.Snapshot().AsSpan().SequenceEqual(before))
                        throw new FuzzInvariantException($"epoch {epoch.Number} was refused ({e.Message}) but changed the sink");
                    throw;
                }
                if (epoch.VcpuStates.Count > 0) epoch.VcpuStatesInOrder();
            }
        }
    }

    /// <summary>Guest memory as a receiver holds it, in an array.</summary>
    public sealed class MemoryPageSink(int pages) : IPageSink
    {
        private readonly byte[] _memory = new byte[pages * StreamFormat.PageSize];

        public ulong PageCount => (ulong)pages;

        public bool Accepts(ulong pfn) => pfn != (ulong)pages - 1;

        public Span<byte> GetPage(ulong pfn)
        {
            if (pfn >= (ulong)pages - 1) throw new FuzzInvariantException($"page 0x{pfn:x} was written though refused");
            return _memory.AsSpan((int)pfn * StreamFormat.PageSize, StreamFormat.PageSize);
        }

        public byte[] Snapshot() => (byte[])_memory.Clone();
    }

    /// <summary>Volume roots for validation only: the validator needs the count, never a directory.</summary>
    internal sealed class FuzzVolumeRoots(int count) : IVolumeRoots
    {
        public int Count => count;

        public VolumeSpec Spec(int volume) => new() { GuestPath = $"/v{volume}", Tmpfs = true };

        public int RootFd(int volume) => throw new FuzzInvariantException("the validator opened a volume root");

        public IVolumeJournal? Journal { get; set; }

        public void Repoint(int volume, string hostDir) => throw new FuzzInvariantException("the validator repointed a volume");
    }
}
