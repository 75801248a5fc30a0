using Remus.Sandbox;
using Remus.Sandbox.Kernel.Volumes;
using Remus.Sandbox.Volumes;
using Xunit;

namespace Remus.Tests.Sandbox;

/// <summary>
/// The kernel's table of volumes (Kernel/Volumes/VolumeTable.cs): the longest mount point wins and ".." inside a
/// volume is left to its root; a directory is held by one table at a time (flock) until disposed; a receiver's
/// table opens each root at its staging directory, emptied first, and the root follows the directory when it is
/// renamed into place; a tmpfs gets a private empty directory under /dev/shm that goes with the table; what a
/// previous run left in .remus-orphans is cleared at start.
/// </summary>
public sealed class VolumeTableTests : IDisposable
{
    private readonly string _a = Path.Combine(Path.GetTempPath(), $"remus-vt-{Guid.NewGuid():N}");
    private readonly string _b = Path.Combine(Path.GetTempPath(), $"remus-vt-{Guid.NewGuid():N}");

    public void Dispose()
    {
        foreach (var d in new[] { _a, _b, VolumeStaging.StagingPath(_a), _a + ".moved" })
            if (Directory.Exists(d)) Directory.Delete(d, true);
    }

    [Fact]
    public void The_longest_mount_point_wins_and_the_rest_is_left_to_the_root()
    {
        using var t = new VolumeTable(
        [
            new VolumeSpec { HostPath = _a, GuestPath = "/data" },
            new VolumeSpec { HostPath = _b, GuestPath = "/data/inner/" },
        ], incoming: false);
        Assert.True(t.TryLookup("/data/x/y", out int v, out string rel));
        Assert.Equal((0, "x/y"), (v, rel));
        Assert.True(t.TryLookup("/data/inner/z", out v, out rel));
        Assert.Equal((1, "z"), (v, rel));
        Assert.True(t.TryLookup("//data/./inner", out v, out rel));
        Assert.Equal((1, ""), (v, rel));
        Assert.True(t.TryLookup("/data/inner/../../etc", out v, out rel));
        Assert.Equal((1, "../../etc"), (v, rel));
        Assert.True(t.TryLookup("/etc/../data/dir/", out v, out rel));
        Assert.Equal((0, "dir/"), (v, rel));
        Assert.False(t.TryLookup("/database", out _, out _));
        Assert.False(t.TryLookup("/", out _, out _));
    }

    [Fact]
    public void A_directory_is_held_until_its_table_is_disposed()
    {
        var spec = new VolumeSpec { HostPath = _a, GuestPath = "/data" };
        var first = new VolumeTable([spec], incoming: false);
        var e = Assert.Throws<SandboxException>(() => new VolumeTable([spec], incoming: false));
        Assert.Equal($"volume {_a} is in use by another domain on this host", e.Message);
        first.Dispose();
        using var second = new VolumeTable([spec], incoming: false);
        Assert.Equal(_a, second.HostDir(0));
    }

    [Fact]
    public void A_receiver_builds_in_an_emptied_staging_directory_that_follows_its_rename()
    {
        string staging = VolumeStaging.StagingPath(_a);
        Directory.CreateDirectory(Path.Combine(staging, "old"));
        Directory.CreateDirectory(_a);
        File.WriteAllText(Path.Combine(_a, "live"), "the source's");
        using var t = new VolumeTable([new VolumeSpec { HostPath = _a, GuestPath = "/data" }], incoming: true);
        Assert.Equal(staging, t.HostDir(0));
        Assert.Empty(Directory.EnumerateFileSystemEntries(staging));
        Assert.True(File.Exists(Path.Combine(_a, "live")), "the host path itself is not touched");
        Assert.Equal(0, t.Open(0, "made", 0x41, 0x1a4, out var f));
        Directory.Move(staging, _a + ".moved");
        t.Repoint(0, _a + ".moved");
        Assert.Equal("made", t.Canonical(0, f!.HostFd));
        Assert.True(File.Exists(Path.Combine(_a + ".moved", "made")));
        f.Release();
    }

    [Fact]
    public void A_tmpfs_is_a_private_directory_in_memory_removed_with_its_table()
    {
        var t = new VolumeTable([new VolumeSpec { GuestPath = "/tmp", Tmpfs = true }], incoming: false);
        string dir = t.HostDir(0);
        Assert.StartsWith("/dev/shm/", dir);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir));
        Assert.Equal(0, t.Open(0, "f", 0x41, 0x1a4, out var f));
        f!.Release();
        t.Dispose();
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void What_a_previous_run_left_in_remus_orphans_is_cleared()
    {
        Directory.CreateDirectory(Path.Combine(_a, VolumeTable.OrphansName));
        File.WriteAllText(Path.Combine(_a, VolumeTable.OrphansName, "3"), "no one holds it");
        using var t = new VolumeTable([new VolumeSpec { HostPath = _a, GuestPath = "/data" }], incoming: false);
        Assert.False(Directory.Exists(Path.Combine(_a, VolumeTable.OrphansName)));
    }
}
