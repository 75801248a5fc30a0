using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Remus.Sandbox.Platform;

namespace Remus.Sandbox.Memory;

/// <summary>
/// The program's memory as the kernel reaches it for a system call: virtual addresses, translated page by page to
/// guest RAM, with the program's own permissions, as Linux's copy_from_user/copy_to_user. A copy that runs into a
/// page the program could not read (or write) stops there: the checked calls (<see cref="Read(ulong, Span{byte})"/>,
/// <see cref="Write"/>, ReadU64…) then raise <see cref="GuestFaultException"/> (EFAULT), the partial ones
/// (<see cref="ReadPartial"/>, <see cref="WritePartial"/>) return how far they got, for the short counts of read,
/// write and getrandom. Writes mark the pages dirty (the checkpoint sees them).
/// Every copy goes page by page through the address space's translation (<see cref="AddressSpace.Translate"/>: the
/// page tables in the paged model, the identity otherwise). A write to a page with no frame yet backs it, as a touch
/// by the program would (Linux's fault-in during copy_to_user); a read of one reads zeros without backing it.
/// </summary>
public sealed class UserMemory(GuestMemory ram, AddressSpace mm)
{
    private const int Page = (int)GuestMemory.PageSize;

    /// <summary>Guest RAM (physical memory), in bytes.</summary>
    public ulong Size => ram.Size;

    /// <summary>The physical address behind program address <paramref name="addr"/> (whose page is accessible).</summary>
    private ulong Translate(ulong addr) => mm.Translate(addr, allocate: true);

    /// <summary>As <see cref="Translate"/> for reading: <see cref="AddressSpace.NoFrame"/> for a page that reads as zeros.</summary>
    private ulong TranslateRead(ulong addr) => mm.Translate(addr, allocate: false);

    /// <summary>
    /// The physical start of [addr, addr+len) when it is one run of guest RAM (every page backed, the frames in a row),
    /// else <see cref="AddressSpace.NoFrame"/>.
    /// </summary>
    private ulong Contiguous(ulong addr, int len, bool allocate)
    {
        if (!mm.Paged) return addr;
        ulong start = mm.Translate(addr, allocate);
        if (start == AddressSpace.NoFrame) return start;
        for (int done = InPage(addr, len); done < len; done += InPage(addr + (ulong)done, len - done))
            if (mm.Translate(addr + (ulong)done, allocate) != start + (ulong)done) return AddressSpace.NoFrame;
        return start;
    }

    /// <summary>Bytes from <paramref name="addr"/> on (at most <paramref name="len"/>) a copy can reach.</summary>
    public ulong Accessible(ulong addr, ulong len, bool write) => mm.AccessibleLength(addr, len, write);

    /// <summary>Whether all of [addr, addr+len) is accessible.</summary>
    public bool IsAccessible(ulong addr, ulong len, bool write) => Accessible(addr, len, write) == len;

    private void Require(ulong addr, ulong len, bool write)
    {
        ulong n = Accessible(addr, len, write);
        if (n != len) throw new GuestFaultException(addr + n);
    }

    /// <summary>Length of the piece of a copy at <paramref name="addr"/> that stays in one page.</summary>
    private static int InPage(ulong addr, int remaining) => Math.Min(remaining, Page - (int)(addr & (GuestMemory.PageSize - 1)));

    /// <summary>Copies program memory at <paramref name="addr"/> into <paramref name="dest"/>, all or EFAULT.</summary>
    public void Read(ulong addr, Span<byte> dest)
    {
        Require(addr, (ulong)dest.Length, write: false);
        CopyOut(addr, dest);
    }

    /// <summary>Copies as much as is readable (stopping at the first page that is not); returns the bytes copied.</summary>
    public int ReadPartial(ulong addr, Span<byte> dest)
    {
        int n = (int)Accessible(addr, (ulong)dest.Length, write: false);
        CopyOut(addr, dest[..n]);
        return n;
    }

    private void CopyOut(ulong addr, Span<byte> dest)
    {
        for (int done = 0; done < dest.Length;)
        {
            int n = InPage(addr + (ulong)done, dest.Length - done);
            ulong at = TranslateRead(addr + (ulong)done);
            if (at == AddressSpace.NoFrame) dest.Slice(done, n).Clear();
            else ram.PhysicalRead(at, n).CopyTo(dest[done..]);
            done += n;
        }
    }

    /// <summary>Copies <paramref name="data"/> into program memory at <paramref name="addr"/>, all or EFAULT (nothing written).</summary>
    public void Write(ulong addr, ReadOnlySpan<byte> data)
    {
        Require(addr, (ulong)data.Length, write: true);
        CopyIn(addr, data);
    }

    /// <summary>Copies as much as is writable (stopping at the first page that is not); returns the bytes copied.</summary>
    public int WritePartial(ulong addr, ReadOnlySpan<byte> data)
    {
        int n = (int)Accessible(addr, (ulong)data.Length, write: true);
        CopyIn(addr, data[..n]);
        return n;
    }

    private void CopyIn(ulong addr, ReadOnlySpan<byte> data)
    {
        for (int done = 0; done < data.Length;)
        {
            int n = InPage(addr + (ulong)done, data.Length - done);
            data.Slice(done, n).CopyTo(ram.Physical(Translate(addr + (ulong)done), n));
            done += n;
        }
    }

    /// <summary>
    /// The program memory at [addr, addr+len) as one span when it is one run of guest RAM, for a file to read into
    /// directly (marked dirty); false when the caller must go through a buffer and <see cref="WritePartial"/>. The
    /// range must have been found writable (<see cref="Accessible"/>).
    /// </summary>
    internal bool TryDirectWrite(ulong addr, int len, out Span<byte> span)
    {
        ulong at = Contiguous(addr, len, allocate: true);
        span = at == AddressSpace.NoFrame ? default : ram.Physical(at, len);
        return at != AddressSpace.NoFrame;
    }

    /// <summary>As <see cref="TryDirectWrite"/> for a file to write from; the range must have been found readable.</summary>
    internal bool TryDirectRead(ulong addr, int len, out ReadOnlySpan<byte> span)
    {
        ulong at = Contiguous(addr, len, allocate: false);
        span = at == AddressSpace.NoFrame ? default : ram.PhysicalRead(at, len);
        return at != AddressSpace.NoFrame;
    }

    /// <summary>Read-only view of [addr, addr+len), which must be readable (EFAULT otherwise). Prefer <see cref="Read(ulong, Span{byte})"/>.</summary>
    public ReadOnlySpan<byte> Span(ulong addr, int len)
    {
        if (len < 0) throw new GuestFaultException(addr);
        Require(addr, (ulong)len, write: false);
        ulong at = Contiguous(addr, len, allocate: true);
        if (at == AddressSpace.NoFrame) throw new GuestFaultException(addr); // not one run of RAM: use Read
        return ram.PhysicalRead(at, len);
    }

    /// <summary>Writable view of [addr, addr+len), which must be writable (EFAULT otherwise); marked dirty. Prefer <see cref="Write"/>.</summary>
    public Span<byte> WritableSpan(ulong addr, int len)
    {
        if (len < 0) throw new GuestFaultException(addr);
        Require(addr, (ulong)len, write: true);
        ulong at = Contiguous(addr, len, allocate: true);
        if (at == AddressSpace.NoFrame) throw new GuestFaultException(addr); // not one run of RAM: use Write
        return ram.Physical(at, len);
    }

    public ulong ReadU64(ulong addr) { Span<byte> b = stackalloc byte[8]; Read(addr, b); return BinaryPrimitives.ReadUInt64LittleEndian(b); }
    public uint ReadU32(ulong addr) { Span<byte> b = stackalloc byte[4]; Read(addr, b); return BinaryPrimitives.ReadUInt32LittleEndian(b); }

    public void WriteU64(ulong addr, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        Write(addr, b);
    }

    public void WriteU32(ulong addr, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        Write(addr, b);
    }

    public T Read<T>(ulong addr) where T : unmanaged
    {
        T value = default;
        Read(addr, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref value, 1)));
        return value;
    }

    public void WriteStruct<T>(ulong addr, in T value) where T : unmanaged =>
        Write(addr, MemoryMarshal.AsBytes(MemoryMarshal.CreateReadOnlySpan(in value, 1)));

    /// <summary>
    /// Reads a NUL-terminated string of at most <paramref name="max"/> bytes: ENAMETOOLONG past it, EFAULT when an
    /// unreadable page comes before the NUL.
    /// </summary>
    public string ReadCString(ulong addr, int max = 4096)
    {
        var bytes = new List<byte>(64);
        ulong at = addr;
        while (bytes.Count < max)
        {
            int n = InPage(at, max - bytes.Count);
            if (Accessible(at, (ulong)n, write: false) != (ulong)n) throw new GuestFaultException(at);
            ulong phys = TranslateRead(at);
            var piece = phys == AddressSpace.NoFrame ? new ReadOnlySpan<byte>(new byte[1]) : ram.PhysicalRead(phys, n);
            int nul = piece.IndexOf((byte)0);
            if (nul >= 0)
            {
                if (bytes.Count == 0) return Encoding.UTF8.GetString(piece[..nul]);
                foreach (byte b in piece[..nul]) bytes.Add(b);
                return Encoding.UTF8.GetString(CollectionsMarshal.AsSpan(bytes));
            }
            foreach (byte b in piece) bytes.Add(b);
            at += (ulong)n;
        }
        throw new NameTooLongException();
    }

    /// <summary>Makes [addr, addr+len) read as zeros (the program must be allowed to write it: EFAULT otherwise).</summary>
    public void Zero(ulong addr, ulong len)
    {
        Require(addr, len, write: true);
        if (!mm.Paged)
        {
            ram.Zero(addr, len);
            return;
        }
        for (ulong done = 0; done < len;)
        {
            int n = (int)Math.Min(len - done, GuestMemory.PageSize - ((addr + done) & (GuestMemory.PageSize - 1)));
            ulong at = TranslateRead(addr + done);
            if (at != AddressSpace.NoFrame) ram.Physical(at, n).Clear();
            done += (ulong)n;
        }
    }
}
