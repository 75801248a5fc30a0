using System.Buffers.Binary;

namespace Remus.Sandbox.Kernel.Files;

/// <summary>The console behind fds 0, 1 and 2: reads come from the domain's console input, writes go to its output.</summary>
internal sealed class ConsoleFile(IConsole console, int stream) : FileDescription
{
    public int Stream { get; } = stream;

    public override long Read(Span<byte> buffer, CancellationToken interrupt)
    {
        if (Stream != 0) return -Errno.EBADF;
        if (buffer.Length == 0) return 0;
        return console.Read(buffer, interrupt);
    }

    public override long Write(ReadOnlySpan<byte> data)
    {
        if (Stream == 0) return -Errno.EBADF;
        console.Write(Stream, data);
        return data.Length;
    }

    public override bool IsTerminal => console.IsTerminal;

    public override long Stat(Span<byte> st)
    {
        st.Clear();
        // A terminal looks like /dev/pts/0 (char device 136:0), anything else like a pipe.
        BinaryPrimitives.WriteUInt64LittleEndian(st[16..], 1);                                      // st_nlink
        BinaryPrimitives.WriteUInt32LittleEndian(st[24..], IsTerminal ? 0x2190u : 0x1180u);          // st_mode
        BinaryPrimitives.WriteUInt64LittleEndian(st[40..], IsTerminal ? 0x8800UL : 0);               // st_rdev
        BinaryPrimitives.WriteInt64LittleEndian(st[56..], IsTerminal ? 1024 : 4096);                 // st_blksize
        BinaryPrimitives.WriteUInt64LittleEndian(st[8..], (ulong)(3 + Stream));                      // st_ino
        return 0;
    }
}
