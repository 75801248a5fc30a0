using System.Security.Cryptography;

namespace Remus.Sandbox.Net.Tcp;

/// <summary>
/// Initial sequence numbers per RFC 6528: a keyed hash of the connection's addresses and ports plus a 4 µs clock
/// (the guest's, which checkpoints carry). The key is part of the checkpoint, so a restored stack keeps choosing
/// numbers the peers' old connections cannot confuse.
/// </summary>
internal sealed class IsnGenerator
{
    private ulong _k0 = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)), _k1 = BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8));

    public uint Next(NetEndpoint local, NetEndpoint remote, long nowNs)
    {
        ulong h = Mix(_k0 ^ ((ulong)local.Address.Value << 32 | remote.Address.Value));
        h = Mix(h ^ _k1 ^ ((ulong)local.Port << 16 | remote.Port));
        return (uint)(h >> 32) + (uint)(nowNs / 4000);
    }

    /// <summary>The MSS values a SYN cookie can carry (3 bits), as Linux's msstab idea.</summary>
    public static readonly int[] CookieMss = [216, 536, 1200, 1380, 1440, 1460, 4312, 8960];

    /// <summary>
    /// A SYN cookie (RFC 4987 §3.6): 5 bits of a 64 s counter, 3 bits of MSS, 24 bits of a keyed hash of the
    /// connection, the client's ISN and the counter.
    /// </summary>
    public uint Cookie(NetEndpoint local, NetEndpoint remote, uint clientIsn, int mss, long nowNs)
    {
        uint t = (uint)(nowNs / 64_000_000_000L) & 31;
        int idx = 0;
        for (int i = 0; i < CookieMss.Length; i++) if (CookieMss[i] <= mss) idx = i;
        return (t << 27) | ((uint)idx << 24) | (CookieHash(local, remote, clientIsn, t) & 0xFFFFFF);
    }

    /// <summary>The MSS a valid cookie (at most one 64 s period old) carries, or 0.</summary>
    public int CheckCookie(NetEndpoint local, NetEndpoint remote, uint clientIsn, uint cookie, long nowNs)
    {
        uint t = cookie >> 27;
        uint now = (uint)(nowNs / 64_000_000_000L) & 31;
        if (((now - t) & 31) > 1) return 0;
        if ((CookieHash(local, remote, clientIsn, t) & 0xFFFFFF) != (cookie & 0xFFFFFF)) return 0;
        return CookieMss[(cookie >> 24) & 7];
    }

    private uint CookieHash(NetEndpoint local, NetEndpoint remote, uint clientIsn, uint t)
    {
        ulong h = Mix(_k1 ^ ((ulong)local.Address.Value << 32 | remote.Address.Value));
        h = Mix(h ^ _k0 ^ ((ulong)local.Port << 48 | (ulong)remote.Port << 32 | clientIsn));
        return (uint)Mix(h ^ t);
    }

    /// <summary>A keyed 32-bit value (ephemeral port choice, SO_REUSEPORT spreading).</summary>
    public uint Hash(ulong v) => (uint)(Mix(v ^ _k1) >> 16);

    private static ulong Mix(ulong x)
    {
        x ^= x >> 33; x *= 0xff51afd7ed558ccdUL;
        x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53UL;
        x ^= x >> 33;
        return x;
    }

    public void Save(BinaryWriter w) { w.Write(_k0); w.Write(_k1); }

    public void Load(BinaryReader r) { _k0 = r.ReadUInt64(); _k1 = r.ReadUInt64(); }
}
