using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Remus.Tests.Net.Interop;

/// <summary>
/// The byte stream of a seed that peer.c sends and hashes: xorshift64 (13, 7, 17) from state seed|1, each state
/// written little-endian. Reads fill spans in order; <see cref="Sha256"/> hashes a prefix of it.
/// </summary>
public sealed class GeneratedStream(ulong seed)
{
    private ulong x = seed | 1;
    private readonly byte[] block = new byte[8];
    private int used = 8;

    public void Fill(Span<byte> into)
    {
        int i = 0;
        while (i < into.Length)
        {
            if (used == 8 && into.Length - i >= 8)
            {
                Next();
                BinaryPrimitives.WriteUInt64LittleEndian(into[i..], x);
                i += 8;
                continue;
            }
            if (used == 8)
            {
                Next();
                BinaryPrimitives.WriteUInt64LittleEndian(block, x);
                used = 0;
            }
            into[i++] = block[used++];
        }
    }

    private void Next()
    {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }

    /// <summary>Lowercase hex SHA-256 of the first <paramref name="length"/> bytes of the stream of <paramref name="seed"/>.</summary>
    public static string Sha256(ulong seed, long length)
    {
        var g = new GeneratedStream(seed);
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buf = new byte[1 << 16];
        for (long done = 0; done < length;)
        {
            int n = (int)Math.Min(buf.Length, length - done);
            g.Fill(buf.AsSpan(0, n));
            h.AppendData(buf, 0, n);
            done += n;
        }
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }
}
