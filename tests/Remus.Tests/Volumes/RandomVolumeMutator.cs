using Xunit;
using Remus.Sandbox.Platform;
using Remus.Sandbox.Volumes;

namespace Remus.Tests.Volumes;

/// <summary>
/// Random mutations of a primary directory made the way the file system makes them (a host call, then the journal
/// told if it succeeded, with canonical paths), seeded so that a failure can be replayed.
/// </summary>
internal sealed class RandomVolumeMutator(string root, int volume, Random random)
{
    private static readonly string[] Names = ["a", "b", "c", "dir", "f.db", "wal", "é", "x y", "n1", "n2"];

    public IVolumeJournal? Journal { get; set; }

    public int Done { get; private set; }

    private string Full(string rel) => rel.Length == 0 ? root : Path.Combine(root, rel);

    private (List<string> Files, List<string> Dirs, List<string> Links) Scan()
    {
        var files = new List<string>(); var dirs = new List<string> { "" }; var links = new List<string>();
        Span<byte> st = stackalloc byte[HostFiles.StatSize];
        var stack = new Stack<string>(); stack.Push("");
        while (stack.Count > 0)
        {
            string d = stack.Pop();
            foreach (var e in Directory.EnumerateFileSystemEntries(Full(d)).Order(StringComparer.Ordinal))
            {
                string rel = VolumePath.Join(d, Path.GetFileName(e));
                if (HostDirectories.StatAt(HostDirectories.AtFdCwd, e, HostDirectories.AtSymlinkNoFollow, st) != 0) continue;
                var s = HostStat.Parse(st);
                if (s.IsDirectory) { dirs.Add(rel); stack.Push(rel); }
                else if (s.IsRegular) files.Add(rel);
                else links.Add(rel);
            }
        }
        return (files, dirs, links);
    }

    private T Pick<T>(List<T> list) => list[random.Next(list.Count)];

    private string NewPath(List<string> dirs) => VolumePath.Join(Pick(dirs), Names[random.Next(Names.Length)]);

    /// <summary>One random mutation (tried until one succeeds on the host).</summary>
    public void Step()
    {
        var (files, dirs, links) = Scan();
        var any = files.Concat(dirs.Skip(1)).Concat(links).ToList();
        for (int attempt = 0; attempt < 50; attempt++)
        {
            int op = random.Next(14);
            if (Try(op, files, dirs, links, any)) { Done++; return; }
        }
    }

    private bool Try(int op, List<string> files, List<string> dirs, List<string> links, List<string> any)
    {
        switch (op)
        {
            case 0: // create
            {
                string p = NewPath(dirs);
                uint mode = (uint)random.Next(8) switch { 0 => 0x180 /* 0600 */, 1 => 0x1ED /* 0755 */, 2 => 0x1A0 /* 0640 */, _ => 0x1A4 /* 0644 */ };
                int fd = HostDirectories.OpenAt(HostDirectories.AtFdCwd, Full(p), HostDirectories.O_WRONLY | HostDirectories.O_CREAT | HostDirectories.O_EXCL, (int)mode);
                if (fd < 0) return false;
                HostDirectories.Fchmod(fd, (int)mode);
                HostFiles.Close(fd);
                Journal?.Created(volume, p, mode);
                return true;
            }
            case 1 or 2 or 3: // write (the common case)
            {
                if (files.Count == 0) return false;
                string p = Pick(files);
                int len = random.Next(10) switch { 0 => random.Next(1 << 20, (1 << 20) + 300000), < 4 => random.Next(1, 10), < 7 => random.Next(1, 5000), _ => random.Next(1, 70000) };
                long offset = random.Next(3) == 0 ? random.Next(0, 3 << 20) : random.Next(0, 5000);
                byte[] data = new byte[len];
                if (random.Next(2) == 0) random.NextBytes(data);
                else for (int i = 0; i < len; i++) data[i] = (byte)('a' + i % 7);
                int fd = HostDirectories.OpenAt(HostDirectories.AtFdCwd, Full(p), HostDirectories.O_WRONLY, 0);
                if (fd < 0) return false;
                long n = HostDirectories.PWrite(fd, data, offset);
                HostFiles.Close(fd);
                if (n <= 0) return false;
                Journal?.Wrote(volume, p, offset, data.AsSpan(0, (int)n));
                return true;
            }
            case 4: // truncate or fallocate
            {
                if (files.Count == 0) return false;
                string p = Pick(files);
                int fd = HostDirectories.OpenAt(HostDirectories.AtFdCwd, Full(p), HostDirectories.O_WRONLY, 0);
                if (fd < 0) return false;
                try
                {
                    if (random.Next(3) == 0)
                    {
                        long off = random.Next(0, 100000), len = random.Next(1, 100000);
                        if (HostDirectories.Fallocate(fd, 0, off, len) != 0) return false;
                        Journal?.Allocated(volume, p, off, len);
                        return true;
                    }
                    long size = random.Next(3) == 0 ? 0 : random.Next(0, 2 << 20);
                    if (HostDirectories.Truncate(fd, size) != 0) return false;
                    Journal?.Truncated(volume, p, size);
                    return true;
                }
                finally { HostFiles.Close(fd); }
            }
            case 5: // mkdir
            {
                string p = NewPath(dirs);
                uint mode = random.Next(3) == 0 ? 0x1C0u /* 0700 */ : 0x1EDu /* 0755 */;
                if (HostDirectories.MkdirAt(HostDirectories.AtFdCwd, Full(p), (int)mode) != 0) return false;
                HostDirectories.ChmodAt(HostDirectories.AtFdCwd, Full(p), (int)mode, 0);
                Journal?.MadeDirectory(volume, p, mode);
                return true;
            }
            case 6: // rmdir
            {
                if (dirs.Count < 2) return false;
                string p = Pick(dirs);
                if (p.Length == 0 || HostDirectories.UnlinkAt(HostDirectories.AtFdCwd, Full(p), HostDirectories.AtRemoveDir) != 0) return false;
                Journal?.RemovedDirectory(volume, p);
                return true;
            }
            case 7: // unlink
            {
                var candidates = files.Concat(links).ToList();
                if (candidates.Count == 0) return false;
                string p = Pick(candidates);
                if (HostDirectories.UnlinkAt(HostDirectories.AtFdCwd, Full(p), 0) != 0) return false;
                Journal?.Unlinked(volume, p);
                return true;
            }
            case 8 or 9: // rename
            {
                if (any.Count == 0) return false;
                string from = Pick(any);
                string to = random.Next(3) == 0 && any.Count > 1 ? Pick(any) : NewPath(dirs);
                uint flags = (uint)random.Next(4) switch { 0 => HostDirectories.RenameNoReplace, 1 => HostDirectories.RenameExchange, _ => 0u };
                if (from == to) return false;
                if (HostDirectories.RenameAt2(HostDirectories.AtFdCwd, Full(from), HostDirectories.AtFdCwd, Full(to), flags) != 0) return false;
                Journal?.Renamed(volume, from, to, flags);
                return true;
            }
            case 10: // link
            {
                if (files.Count == 0) return false;
                string existing = Pick(files), p = NewPath(dirs);
                if (HostDirectories.LinkAt(HostDirectories.AtFdCwd, Full(existing), HostDirectories.AtFdCwd, Full(p), 0) != 0) return false;
                Journal?.Linked(volume, existing, p);
                return true;
            }
            case 11: // symlink
            {
                string target = random.Next(4) switch { 0 => "../../../etc/passwd", 1 => "/etc", 2 => "a", _ => "dir/f.db" };
                string p = NewPath(dirs);
                if (HostDirectories.SymlinkAt(target, HostDirectories.AtFdCwd, Full(p)) != 0) return false;
                Journal?.Symlinked(volume, target, p);
                return true;
            }
            case 12: // chmod
            {
                var candidates = files.Concat(dirs).ToList();
                string p = Pick(candidates);
                uint mode = (uint)random.Next(4) switch { 0 => 0x180 /* 0600 */, 1 => 0x1ED /* 0755 */, 2 => 0x9ED /* 04755 */, _ => 0x1A0 /* 0640 */ };
                if (dirs.Contains(p)) mode |= 0x1C0 /* 0700 */;                 // keep directories usable
                if (HostDirectories.ChmodAt(HostDirectories.AtFdCwd, Full(p), (int)mode, 0) != 0) return false;
                Journal?.ChangedMode(volume, p, mode);
                return true;
            }
            default: // utimes
            {
                var candidates = files.Concat(dirs).ToList();
                string p = Pick(candidates);
                long a = random.NextInt64(0, 2_000_000_000L) * 1_000_000_000L + random.Next(1_000_000_000);
                long m = random.NextInt64(0, 2_000_000_000L) * 1_000_000_000L + random.Next(1_000_000_000);
                long[] t = [a / 1_000_000_000L, a % 1_000_000_000L, m / 1_000_000_000L, m % 1_000_000_000L];
                if (HostDirectories.UtimensAt(HostDirectories.AtFdCwd, Full(p), t, 0) != 0) return false;
                Journal?.ChangedTimes(volume, p, a, m);
                return true;
            }
        }
    }
}
