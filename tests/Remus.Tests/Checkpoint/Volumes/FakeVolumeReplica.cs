using System.Buffers.Binary;
using Remus.Sandbox.Volumes;

namespace Remus.Tests.Checkpoint.Volumes;

/// <summary>
/// A stand-in for a domain's volumes as the checkpoint engine sees them (<see cref="IVolumeReplica"/>): it records
/// every call it gets, in order, in a log it may share with the domain and the test. Its bodies are opaque bytes with
/// a framing of its own: "FAKEVOPS", a sequence number (u32), the kind (u32: 1 copy, 2 journal), then filler. As a
/// sender it produces them (a script says how many and how large per round); as a receiver it judges them
/// (<see cref="Validate"/>) and applies them by recording their sequence numbers, failing where it is told to.
/// </summary>
public sealed class FakeVolumeReplica(List<string>? log = null) : IVolumeReplica
{
    private static ReadOnlySpan<byte> Magic => "FAKEVOPS"u8;
    public const int HeaderBytes = 16;

    private readonly object _lock = new();
    private uint _sequence;
    private int _copyRounds;

    public List<string> Log { get; } = log ?? [];

    /// <summary>Whether the sender's domain is paused now (recorded with each sender call as "(paused)").</summary>
    public Func<bool>? IsPaused { get; set; }

    /// <summary>Sender: the bodies of copy round r (0-based) as (count, size); default: round 0 two of 4 KiB, later one of 64 bytes.</summary>
    public Func<int, (int Count, int Size)> CopyRound { get; set; } = r => r == 0 ? (2, 4096) : (1, 64);

    /// <summary>Sender: called between two bodies of a copy round (to make a round slow, as reading a large file is).</summary>
    public Action<int, int>? BetweenCopyBodies { get; set; }

    /// <summary>Sender: bodies per journal drain (default one of 48 bytes).</summary>
    public (int Count, int Size) JournalDrain { get; set; } = (1, 48);

    /// <summary>Receiver: the apply of the n-th journal body (1-based) throws, as a full disk would.</summary>
    public int? FailJournalApply { get; set; }

    /// <summary>Receiver: the apply of the n-th copy body (1-based) throws.</summary>
    public int? FailCopyApply { get; set; }

    private int _journalApplies, _copyApplies;

    /// <summary>Sender: sequence numbers of the bodies emitted, in order.</summary>
    public List<uint> Emitted { get; } = [];

    /// <summary>Receiver: sequence numbers of the bodies applied, in order.</summary>
    public List<uint> Applied { get; } = [];

    /// <summary>Receiver: sequence numbers validated, in order.</summary>
    public List<uint> Validated { get; } = [];

    public int Commits { get; private set; }

    public bool Stopped { get; private set; }

    /// <summary>Receiver: a body whose sequence number is <paramref name="sequence"/> (for hand-built streams).</summary>
    public static byte[] Body(uint sequence, int size = 32, uint kind = 2)
    {
        var body = new byte[Math.Max(size, HeaderBytes)];
        Magic.CopyTo(body);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(8), sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(12), kind);
        for (int i = HeaderBytes; i < body.Length; i++) body[i] = (byte)(sequence * 31 + i);
        return body;
    }

    public static uint SequenceOf(ReadOnlySpan<byte> body) => BinaryPrimitives.ReadUInt32LittleEndian(body[8..]);

    /// <summary>1 for a copy body, 2 for a journal body.</summary>
    public static uint KindOf(ReadOnlySpan<byte> body) => BinaryPrimitives.ReadUInt32LittleEndian(body[12..]);

    /// <summary>Whether <paramref name="bytes"/> (one write of a stream writer) is a fake body.</summary>
    public static bool IsBody(ReadOnlySpan<byte> bytes) => bytes.Length >= HeaderBytes && bytes[..8].SequenceEqual(Magic);

    private void Record(string what)
    {
        lock (Log) Log.Add(IsPaused is { } p ? $"{what}{(p() ? " (paused)" : "")}" : what);
    }

    public string[] Snapshot()
    {
        lock (Log) return [.. Log];
    }

    public void BeginCopy()
    {
        Record("BeginCopy");
        lock (_lock) _copyRounds = 0;
    }

    public long DrainCopy(Action<ReadOnlySpan<byte>> emit)
    {
        int round;
        lock (_lock) round = _copyRounds++;
        Record($"DrainCopy {round}");
        var (count, size) = CopyRound(round);
        long sent = 0;
        for (int i = 0; i < count; i++)
        {
            if (i > 0) BetweenCopyBodies?.Invoke(round, i);
            sent += Emit(emit, size, 1);
        }
        return sent;
    }

    public void BeginJournal() => Record("BeginJournal");

    public long DrainJournal(Action<ReadOnlySpan<byte>> emit)
    {
        Record("DrainJournal");
        long sent = 0;
        for (int i = 0; i < JournalDrain.Count; i++) sent += Emit(emit, JournalDrain.Size, 2);
        return sent;
    }

    private long Emit(Action<ReadOnlySpan<byte>> emit, int size, uint kind)
    {
        uint sequence;
        lock (_lock)
        {
            sequence = _sequence++;
            Emitted.Add(sequence);
        }
        emit(Body(sequence, size, kind));
        return size - HeaderBytes;
    }

    public void StopTracking()
    {
        lock (Log) Log.Add("StopTracking"); // whenever protection ends: paused or not is no matter
        Stopped = true;
    }

    public void Validate(ReadOnlySpan<byte> body)
    {
        if (body.Length < HeaderBytes || !body[..8].SequenceEqual(Magic))
            throw new InvalidDataException("not a fake volume batch");
        uint sequence = SequenceOf(body);
        lock (_lock) Validated.Add(sequence);
        Record($"Validate {sequence}");
    }

    public void Apply(ReadOnlySpan<byte> body)
    {
        uint sequence = SequenceOf(body);
        bool journal = KindOf(body) == 2;
        int nth = journal ? ++_journalApplies : ++_copyApplies;
        if ((journal ? FailJournalApply : FailCopyApply) == nth)
        {
            Record($"Apply {sequence} failed");
            throw new IOException("No space left on device");
        }
        lock (_lock) Applied.Add(sequence);
        Record($"Apply {sequence}");
    }

    public void Commit(TimeSpan patience, Action<string>? say)
    {
        Commits++;
        Record("Commit");
    }
}
