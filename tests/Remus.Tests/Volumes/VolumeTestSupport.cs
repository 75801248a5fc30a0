using Xunit;
using System.Text;
using Remus.Sandbox.Platform;
using Remus.Sandbox.Volumes;

namespace Remus.Tests.Volumes;

/// <summary>Volume roots over plain temporary directories (the file system's table stands in).</summary>
internal sealed class TestVolumeRoots : IVolumeRoots, IDisposable
{
    private readonly int[] _fds;
    private readonly VolumeSpec[] _specs;

    public TestVolumeRoots(params string[] dirs) : this(dirs.Select((d, i) => new VolumeSpec { HostPath = d, GuestPath = $"/v{i}" }).ToArray(), dirs) { }

    public TestVolumeRoots(VolumeSpec[] specs, string[] dirs)
    {
        _specs = specs;
        _fds = new int[dirs.Length];
        for (int i = 0; i < dirs.Length; i++)
        {
            Directory.CreateDirectory(dirs[i]);
            _fds[i] = HostDirectories.OpenAt(HostDirectories.AtFdCwd, dirs[i], HostDirectories.O_PATH | HostDirectories.O_DIRECTORY, 0);
            Assert.True(_fds[i] >= 0, $"open {dirs[i]}: {_fds[i]}");
        }
    }

    public int Count => _fds.Length;
    public VolumeSpec Spec(int volume) => _specs[volume];
    public int RootFd(int volume) => _fds[volume];
    public IVolumeJournal? Journal { get; set; }
    public List<(int Volume, string HostDir)> Repointed { get; } = [];
    public void Repoint(int volume, string hostDir) => Repointed.Add((volume, hostDir));

    public void Dispose()
    {
        foreach (int fd in _fds) HostFiles.Close(fd);
    }
}

/// <summary>A temporary directory removed on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("remus-vol-").FullName;

    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>A tree's content as text, for comparing two trees: names, types, modes, data, symlink targets, hard links.</summary>
internal static class VolumeTree
{
    public static string Describe(string root)
    {
        var sb = new StringBuilder();
        var inodes = new Dictionary<(ulong, ulong), string>();
        Walk(root, "", sb, inodes);
        return sb.ToString();
    }

    private static void Walk(string root, string rel, StringBuilder sb, Dictionary<(ulong, ulong), string> inodes)
    {
        string dir = rel.Length == 0 ? root : System.IO.Path.Combine(root, rel);
        var names = Directory.EnumerateFileSystemEntries(dir).Select(System.IO.Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        sb.Append($"D {rel} {Mode(dir)}\n");
        Span<byte> st = stackalloc byte[HostFiles.StatSize];
        foreach (var name in names)
        {
            string r = rel.Length == 0 ? name! : rel + "/" + name;
            string full = System.IO.Path.Combine(root, r);
            Assert.Equal(0, HostDirectories.StatAt(HostDirectories.AtFdCwd, full, HostDirectories.AtSymlinkNoFollow, st));
            var s = HostStat.Parse(st);
            if (s.IsSymlink) sb.Append($"L {r} -> {new FileInfo(full).LinkTarget}\n");
            else if (s.IsDirectory) Walk(root, r, sb, inodes);
            else if (s.IsRegular)
            {
                string linked = "";
                if (s.Links > 1)
                {
                    if (inodes.TryGetValue((s.Device, s.Inode), out var first)) linked = $" =link {first}";
                    else inodes[(s.Device, s.Inode)] = r;
                }
                byte[] data = File.ReadAllBytes(full);
                sb.Append($"F {r} {Convert.ToString(s.Permissions, 8)} {data.Length} {Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(data))[..16]}{linked}\n");
            }
            else sb.Append($"? {r}\n");
        }
    }

    private static string Mode(string path)
    {
        Span<byte> st = stackalloc byte[HostFiles.StatSize];
        Assert.Equal(0, HostDirectories.StatAt(HostDirectories.AtFdCwd, path, 0, st));
        return Convert.ToString(HostStat.Parse(st).Permissions, 8);
    }
}
