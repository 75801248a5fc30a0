using Remus.Sandbox.Platform;
using Remus.Sandbox.Volumes;
using Xunit;

namespace Remus.Tests.Volumes;

/// <summary>Commit: the receiver's staging copy becomes the volume; what was there is kept aside; a live VMM's lock is waited for.</summary>
public sealed class VolumeCommitTests : IDisposable
{
    private readonly TempDir _tmp = new();

    public void Dispose() => _tmp.Dispose();

    private (VolumeReplica Replica, TestVolumeRoots Roots) Receiver(params VolumeSpec[] specs)
    {
        var dirs = specs.Select(s => s.Tmpfs ? _tmp.Sub("tmpfs-" + Guid.NewGuid().ToString("N")) : VolumeStaging.StagingPath(s.HostPath)).ToArray();
        var roots = new TestVolumeRoots(specs, dirs);
        return (new VolumeReplica(roots), roots);
    }

    private static void Fill(VolumeReplica r, int volume, string name, string content)
    {
        var w = new VolumeBatchWriter();
        w.File(volume, name, 0x1A4, 0, 0, 0);
        w.Write(volume, name, 0, System.Text.Encoding.UTF8.GetBytes(content));
        w.Drain(r.Apply);
    }

    [Fact]
    public void The_copy_moves_into_place_and_previous_content_is_kept_aside_never_deleted()
    {
        string host = _tmp.Sub("data"), other = _tmp.Sub("fresh");
        Directory.CreateDirectory(host);
        File.WriteAllText(Path.Combine(host, "old"), "old content");
        Directory.CreateDirectory(host + VolumeCommit.PreviousSuffix);      // an earlier previous, kept too
        var (replica, roots) = Receiver(new VolumeSpec { HostPath = host, GuestPath = "/data" },
            new VolumeSpec { HostPath = other + "/", GuestPath = "/fresh" },
            new VolumeSpec { GuestPath = "/tmp", Tmpfs = true });
        using var _ = roots;
        Fill(replica, 0, "new", "replicated");
        Fill(replica, 1, "f", "x");
        Fill(replica, 2, "t", "in tmpfs");

        var said = new List<string>();
        replica.Commit(TimeSpan.FromSeconds(5), said.Add);

        Assert.Equal("replicated", File.ReadAllText(Path.Combine(host, "new")));
        Assert.False(File.Exists(Path.Combine(host, "old")));
        Assert.Equal("old content", File.ReadAllText(Path.Combine(host + VolumeCommit.PreviousSuffix + ".1", "old")));
        Assert.True(Directory.Exists(host + VolumeCommit.PreviousSuffix));
        Assert.False(Directory.Exists(VolumeStaging.StagingPath(host)));
        Assert.Equal("x", File.ReadAllText(Path.Combine(other, "f")));
        Assert.Equal([(0, host), (1, other)], roots.Repointed);
        Assert.Equal(["volume /data: the previous content of " + host + " is kept at " + host + VolumeCommit.PreviousSuffix + ".1"], said);

        // The roots stay valid (open files stay open): the copy is the same directory, now at the host path.
        Fill(replica, 0, "after", "still writable");
        Assert.Equal("still writable", File.ReadAllText(Path.Combine(host, "after")));
        replica.Commit(TimeSpan.FromSeconds(5), said.Add);                    // once only
        Assert.Single(said);
    }

    [Fact]
    public void A_volume_a_live_VMM_still_holds_is_waited_for_then_refused_clearly()
    {
        string host = _tmp.Sub("held");
        Directory.CreateDirectory(host);
        File.WriteAllText(Path.Combine(host, "old"), "old");
        int fd = HostDirectories.OpenAt(HostDirectories.AtFdCwd, host, HostDirectories.O_RDONLY | HostDirectories.O_DIRECTORY, 0);
        Assert.True(fd >= 0);
        var (replica, roots) = Receiver(new VolumeSpec { HostPath = host, GuestPath = "/data" });
        using var _ = roots;
        Fill(replica, 0, "new", "copy");
        try
        {
            Assert.Equal(0, HostDirectories.Flock(fd, HostDirectories.LockEx | HostDirectories.LockNb));
            var e = Assert.Throws<IOException>(() => replica.Commit(TimeSpan.FromMilliseconds(100), null));
            Assert.Contains("still in use by another VMM", e.Message);
            Assert.Equal("old", File.ReadAllText(Path.Combine(host, "old")));     // nothing moved
            Assert.True(Directory.Exists(VolumeStaging.StagingPath(host)));
        }
        finally { HostFiles.Close(fd); }   // the other VMM exits: its lock goes with its fd

        replica.Commit(TimeSpan.FromSeconds(5), null);
        Assert.Equal("copy", File.ReadAllText(Path.Combine(host, "new")));
        Assert.Equal("old", File.ReadAllText(Path.Combine(host + VolumeCommit.PreviousSuffix, "old")));
    }

    [Fact]
    public void A_lock_released_while_commit_waits_lets_it_through()
    {
        string host = _tmp.Sub("released");
        Directory.CreateDirectory(host);
        int fd = HostDirectories.OpenAt(HostDirectories.AtFdCwd, host, HostDirectories.O_RDONLY | HostDirectories.O_DIRECTORY, 0);
        Assert.Equal(0, HostDirectories.Flock(fd, HostDirectories.LockEx | HostDirectories.LockNb));
        var (replica, roots) = Receiver(new VolumeSpec { HostPath = host, GuestPath = "/data" });
        using var _ = roots;
        Fill(replica, 0, "new", "copy");
        var said = new List<string>();
        var commit = Task.Run(() => replica.Commit(TimeSpan.FromMinutes(5), s => { lock (said) said.Add(s); }));
        Thread.Sleep(50);   // not an assertion on time: the commit may or may not have started waiting yet
        HostFiles.Close(fd);
        Assert.True(commit.Wait(TimeSpan.FromMinutes(2)));
        Assert.Equal("copy", File.ReadAllText(Path.Combine(host, "new")));
    }
}
