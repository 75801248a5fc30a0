using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Volumes;

/// <summary>The names in a host directory (getdents64), "." and ".." left out.</summary>
internal static class HostDirectoryListing
{
    public const byte TypeDirectory = 4;

    /// <summary>Every entry of the directory open at <paramref name="dirFd"/> (read from its current offset).</summary>
    public static List<(string Name, byte Type)> Read(int dirFd)
    {
        var names = new List<(string, byte)>();
        byte[] buf = ArrayPool<byte>.Shared.Rent(32 << 10);
        try
        {
            while (true)
            {
                long n = HostFiles.GetDents64(dirFd, buf);
                if (n < 0) throw new IOException($"getdents64: errno {-n}");
                if (n == 0) return names;
                var b = buf.AsSpan(0, (int)n);
                while (b.Length >= 19)
                {
                    int reclen = BinaryPrimitives.ReadUInt16LittleEndian(b[16..]);
                    byte type = b[18];
                    var name = b[19..reclen];
                    int nul = name.IndexOf((byte)0);
                    if (nul >= 0) name = name[..nul];
                    if (!(name.Length == 1 && name[0] == '.') && !(name.Length == 2 && name[0] == '.' && name[1] == '.'))
                        names.Add((Encoding.UTF8.GetString(name), type));
                    b = b[reclen..];
                }
            }
        }
        finally { ArrayPool<byte>.Shared.Return(buf); }
    }
}
