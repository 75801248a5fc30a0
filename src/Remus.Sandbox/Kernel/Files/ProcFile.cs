using System.Buffers.Binary;
using System.Text;
using Remus.Sandbox.Memory;

namespace Remus.Sandbox.Kernel.Files;

/// <summary>
/// A file of /proc whose text is made when it is opened (Linux makes it as it is read; a program reads it at once):
/// /proc/self/maps. Read-only, seekable; checkpoints carry the text and the offset.
/// </summary>
internal sealed class ProcFile(string path, byte[] text) : FileDescription
{
    public string Path { get; } = path;
    public byte[] Text { get; } = text;
    public long Position { get; set; }

    public override long Read(Span<byte> buffer, CancellationToken interrupt)
    {
        long n = PRead(buffer, Position);
        if (n > 0) Position += n;
        return n;
    }

    public override long PRead(Span<byte> buffer, long offset)
    {
        if (offset < 0) return -Errno.EINVAL;
        if (offset >= Text.Length) return 0;
        int n = (int)Math.Min(buffer.Length, Text.Length - offset);
        Text.AsSpan((int)offset, n).CopyTo(buffer);
        return n;
    }

    public override long Write(ReadOnlySpan<byte> data) => -Errno.EBADF;

    public override long Seek(long offset, int whence)
    {
        long at = whence switch { 0 => offset, 1 => Position + offset, 2 => Text.Length + offset, _ => -1 };
        if (whence is < 0 or > 2 || at < 0) return -Errno.EINVAL;
        Position = at;
        return at;
    }

    public override long Stat(Span<byte> st) => StatProc(st);

    /// <summary>What procfs reports for its files: a regular file of size 0, mode 0444.</summary>
    public static long StatProc(Span<byte> st)
    {
        st.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(st[16..], 1);        // st_nlink
        BinaryPrimitives.WriteUInt32LittleEndian(st[24..], 0x8124);   // st_mode: S_IFREG | 0444
        BinaryPrimitives.WriteInt64LittleEndian(st[56..], 1024);      // st_blksize
        return 0;
    }

    /// <summary>
    /// /proc/self/maps from the address space: the program image's pieces as Linux lists them (one line per segment
    /// with its own protection and the program's path, the .bss past the last file page unnamed, pieces mprotect split
    /// shown apart unless they are alike again, Linux's VM_ACCOUNT included), the heap above it, every mmap region with
    /// its protection (adjacent ones with the same protection shown as one, as Linux merges them), and the stack; in
    /// Linux's format.
    /// </summary>
    public static byte[] Maps(AddressSpace mm, string programPath)
    {
        var regions = new List<(ulong Start, ulong End, int Prot, string Name, bool Shared)>();
        MapFlags lastImage = MapFlags.None; // the flags of the image piece regions[^1] is, else None
        foreach (var m in mm.Mappings)
        {
            bool shared = (m.Flags & MapFlags.Shared) != 0;
            bool image = (m.Flags & MapFlags.Image) != 0;
            string name = image && (m.Flags & MapFlags.File) != 0 ? programPath : "";
            bool joins = regions.Count > 0 && regions[^1] is var last && last.End == m.Start && last.Prot == m.Prot
                && (image ? lastImage == m.Flags : lastImage == MapFlags.None && last.Name == "" && last.Shared == shared);
            if (joins) regions[^1] = regions[^1] with { End = m.End };
            else regions.Add((m.Start, m.End, m.Prot, name, shared));
            lastImage = image ? m.Flags : MapFlags.None;
        }
        if (mm.Brk > mm.BrkStart) regions.Add((mm.BrkStart, AddressSpace.PageUp(mm.Brk), 3, "[heap]", false));
        regions.Add((mm.StackBottom, mm.StackTop, 3, "[stack]", false));
        regions.Sort((a, b) => a.Start.CompareTo(b.Start));

        var sb = new StringBuilder();
        foreach (var (start, end, prot, name, shared) in regions)
        {
            int lineStart = sb.Length;
            sb.Append($"{start:x8}-{end:x8} ")
              .Append((prot & 1) != 0 ? 'r' : '-').Append((prot & 2) != 0 ? 'w' : '-').Append((prot & 4) != 0 ? 'x' : '-')
              .Append(shared ? 's' : 'p').Append(" 00000000 00:00 0 ");
            if (name.Length > 0)
            {
                sb.Append(' ', Math.Max(73 - (sb.Length - lineStart), 1));
                sb.Append(name);
            }
            sb.Append('\n');
        }
        return Encoding.UTF8.GetBytes(sb.ToString());
    }
}
