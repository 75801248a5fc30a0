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
