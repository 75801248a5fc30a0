using System.Buffers.Binary;

namespace Remus.Tests.Hardening;

/// <summary>
/// Deterministic mutations of a corpus input, as a short stand-in for AFL++ in CI: bit flips, interesting bytes,
/// truncations, splices with another input, inserted and deleted runs, and 32/64-bit fields set to huge values
/// (lengths, counts, offsets). Seeded: the same inputs every run, so a failure replays.
/// </summary>
internal static class FuzzMutations
{
    private static readonly uint[] Huge = [0xFFFF_FFFF, 0x7FFF_FFFF, 0x8000_0000, 0x0100_0000, 0xFFFF_FFF8, 0x0010_0001];

    public static (byte[] Input, string How) Mutate(Random random, byte[] input, byte[] other)
    {
        var d = (byte[])input.Clone();
        if (d.Length == 0) return (other.Length > 0 ? (byte[])other.Clone() : [0], "empty: other");
        int kind = random.Next(8);
        int at = random.Next(d.Length);
        switch (kind)
        {
            case 0:
            {
                int flips = 1 + random.Next(4);
                for (int i = 0; i < flips; i++) d[random.Next(d.Length)] ^= (byte)(1 << random.Next(8));
                return (d, $"{flips} bit flips");
            }
            case 1:
            {
                byte[] interesting = [0, 1, 0x7F, 0x80, 0xFF, (byte)'"', (byte)'\\', (byte)'[', (byte)'\n', 0x20];
                d[at] = interesting[random.Next(interesting.Length)];
                return (d, $"byte {at} = 0x{d[at]:x2}");
            }
            case 2:
                return (d[..at], $"truncated to {at}");
            case 3:
            {
                int from = other.Length == 0 ? 0 : random.Next(other.Length);
                return ([.. d.AsSpan(0, at), .. other.AsSpan(from)], $"splice at {at} with other from {from}");
            }
            case 4:
            {
                int n = 1 + random.Next(Math.Min(64, d.Length - at));
                return ([.. d.AsSpan(0, at), .. d.AsSpan(at + n)], $"deleted {n} at {at}");
            }
            case 5:
            {
                int n = 1 + random.Next(32);
                var run = new byte[n];
                random.NextBytes(run);
                return ([.. d.AsSpan(0, at), .. run, .. d.AsSpan(at)], $"inserted {n} at {at}");
            }
            case 6 when d.Length >= 4:
            {
                int field = random.Next(d.Length / 4) * 4;
                uint value = Huge[random.Next(Huge.Length)];
                BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan(field), value);
                return (d, $"u32 at {field} = 0x{value:x}");
            }
            case 7 when d.Length >= 8:
            {
                int field = random.Next(d.Length / 8) * 8;
                ulong value = random.Next(2) == 0 ? ulong.MaxValue : 1UL << random.Next(40, 63);
                BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(field), value);
                return (d, $"u64 at {field} = 0x{value:x}");
            }
            default:
                d[at] = (byte)random.Next(256);
                return (d, $"byte {at} random");
        }
    }
}
