using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Remus.Sandbox.Kernel.Files;

/// <summary>
/// The character devices every program may open (drivers/char/mem.c, random.c): /dev/null (reads end at once,
/// writes vanish), /dev/zero (zeros), /dev/full (zeros; writes fail ENOSPC), /dev/random and /dev/urandom (the
/// host's CSPRNG; writes are accepted, as Linux mixes them into its pool). Always ready, like files without a poll
/// operation; stateless, so a checkpoint only names the device.
/// </summary>
internal sealed class DeviceFile : FileDescription
{
    /// <summary>Device path to its minor number (major 1, the memory devices).</summary>
    public static readonly IReadOnlyDictionary<string, int> Minors = new Dictionary<string, int>
    {
        ["/dev/null"] = 3, ["/dev/zero"] = 5, ["/dev/full"] = 7, ["/dev/random"] = 8, ["/dev/urandom"] = 9,
    };

    public DeviceFile(string path)
    {
        if (!Minors.ContainsKey(path)) throw new ArgumentException("not a device", nameof(path));
        Path = path;
    }

    public string Path { get; }
    private int Minor => Minors[Path];
    private bool Readable => (Flags & 3) != 1;
    private bool Writable => (Flags & 3) != 0;

    public override long Read(Span<byte> buffer, CancellationToken interrupt)
    {
        if (!Readable) return -Errno.EBADF;
        switch (Minor)
        {
            case 3: return 0;
            case 5 or 7: buffer.Clear(); return buffer.Length;
            default: RandomNumberGenerator.Fill(buffer); return buffer.Length;
        }
    }

    public override long Write(ReadOnlySpan<byte> data) =>
        !Writable ? -Errno.EBADF : Minor == 7 ? -Errno.ENOSPC : data.Length;

    public override long PRead(Span<byte> buffer, long offset) =>
        Minor is 8 or 9 ? -Errno.ESPIPE : Read(buffer, CancellationToken.None);

    public override long Seek(long offset, int whence) => 0;

    public override long Stat(Span<byte> st) => StatDevice(Path, st);

    public static long StatDevice(string path, Span<byte> st)
    {
        st.Clear();
        int minor = Minors[path];
        BinaryPrimitives.WriteUInt64LittleEndian(st[8..], (ulong)(minor + 1));   // st_ino
        BinaryPrimitives.WriteUInt64LittleEndian(st[16..], 1);                  // st_nlink
        BinaryPrimitives.WriteUInt32LittleEndian(st[24..], 0x21B6);             // st_mode: S_IFCHR | 0666
        BinaryPrimitives.WriteUInt64LittleEndian(st[40..], (ulong)(0x100 | minor)); // st_rdev: 1:minor
        BinaryPrimitives.WriteInt64LittleEndian(st[56..], 4096);                // st_blksize
        return 0;
    }
}
