using System.Buffers.Binary;
using Remus.Sandbox;

namespace Remus.Checkpoint.Remus;

/// <summary>
/// Output commit for the console (DESIGN.md §5): while the domain is protected, what the program writes is held per
/// epoch and reaches the real console only when the backup has acknowledged that epoch, so nothing the outside
/// world saw can be rolled back by a failover. Each sealed epoch's output also travels in its checkpoint: a backup
/// that takes over re-emits it (it cannot know whether the primary released it), so at most that one epoch's output
/// appears twice and nothing is ever missing. Unprotected, it passes output straight through.
/// </summary>
public sealed class OutputCommitConsole(IConsole inner) : IConsole
{
    private readonly object _lock = new();
    private readonly List<(int Stream, byte[] Data)> _open = [];
    private readonly Queue<(ulong Epoch, List<(int Stream, byte[] Data)> Chunks)> _sealed = new();
    private bool _holding;
    private bool _fenced;

    public bool IsTerminal => inner.IsTerminal;

    public int Read(Span<byte> buffer, CancellationToken cancel) => inner.Read(buffer, cancel);

    public int? PollInput() => inner.PollInput();

    public void Write(int stream, ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            if (_fenced) return;
            if (_holding) _open.Add((stream, data.ToArray()));
            else inner.Write(stream, data);
        }
    }

    /// <summary>Bytes held and not yet released (for statistics).</summary>
    public long HeldBytes
    {
        get
        {
            lock (_lock) return _open.Sum(c => (long)c.Data.Length) + _sealed.Sum(e => e.Chunks.Sum(c => (long)c.Data.Length));
        }
    }

    /// <summary>From now on output is held until released.</summary>
    public void StartHolding()
    {
        lock (_lock) _holding = true;
    }

    /// <summary>Closes the output of epoch <paramref name="epoch"/> (everything written since the previous seal) and returns it encoded.</summary>
    public byte[] SealEpoch(ulong epoch)
    {
        lock (_lock)
        {
            var chunks = new List<(int, byte[])>(_open);
            _open.Clear();
            _sealed.Enqueue((epoch, chunks));
            return Encode(chunks);
        }
    }

    /// <summary>Releases the output of every sealed epoch up to and including <paramref name="epoch"/>.</summary>
    public void Release(ulong epoch)
    {
        lock (_lock)
        {
            if (_fenced) return;
            while (_sealed.Count > 0 && _sealed.Peek().Epoch <= epoch)
                foreach (var (s, d) in _sealed.Dequeue().Chunks) inner.Write(s, d);
        }
    }

    /// <summary>Releases everything held (sealed and open) and passes output straight through again.</summary>
    public void StopHolding()
    {
        lock (_lock)
        {
            if (_fenced) return;
            while (_sealed.Count > 0)
                foreach (var (s, d) in _sealed.Dequeue().Chunks) inner.Write(s, d);
            foreach (var (s, d) in _open) inner.Write(s, d);
            _open.Clear();
            _holding = false;
        }
    }

    /// <summary>
    /// The backup took over: everything held is dropped, never released, and so is everything written from now on
    /// (this copy is stopping; the backup's copy is the one the world sees).
    /// </summary>
    public void Fence()
    {
        lock (_lock)
        {
            _fenced = true;
            _open.Clear();
            _sealed.Clear();
        }
    }

    /// <summary>Whether <see cref="Fence"/> was called.</summary>
    public bool IsFenced
    {
        get { lock (_lock) return _fenced; }
    }

    /// <summary>Checks the framing of an encoded epoch's output without writing it (a backup validates before applying).</summary>
    public static void Validate(ReadOnlySpan<byte> encoded) => Replay(NullConsole.Instance, encoded);

    private sealed class NullConsole : IConsole
    {
        public static readonly NullConsole Instance = new();
        public bool IsTerminal => false;
        public int Read(Span<byte> buffer, CancellationToken cancel) => 0;
        public void Write(int stream, ReadOnlySpan<byte> data) { }
    }

    /// <summary>Writes an encoded epoch's output to <paramref name="console"/> (the backup's re-emission at failover).</summary>
    public static void Replay(IConsole console, ReadOnlySpan<byte> encoded)
    {
        if (encoded.Length is > 0 and < 8) throw new InvalidDataException("corrupt console output in the checkpoint");
        while (encoded.Length >= 8)
        {
            int stream = BinaryPrimitives.ReadInt32LittleEndian(encoded);
            int length = BinaryPrimitives.ReadInt32LittleEndian(encoded[4..]);
            if (length < 0 || length > encoded.Length - 8) throw new InvalidDataException("corrupt console output in the checkpoint");
            console.Write(stream, encoded.Slice(8, length));
            encoded = encoded[(8 + length)..];
            if (encoded.Length is > 0 and < 8) throw new InvalidDataException("corrupt console output in the checkpoint");
        }
    }

    private static byte[] Encode(List<(int Stream, byte[] Data)> chunks)
    {
        var buf = new byte[chunks.Sum(c => 8 + c.Data.Length)];
        int at = 0;
        foreach (var (s, d) in chunks)
        {
            BinaryPrimitives.WriteInt32LittleEndian(buf.AsSpan(at), s);
            BinaryPrimitives.WriteInt32LittleEndian(buf.AsSpan(at + 4), d.Length);
            d.CopyTo(buf, at + 8);
            at += 8 + d.Length;
        }
        return buf;
    }
}
