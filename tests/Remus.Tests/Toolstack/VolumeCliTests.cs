using System.Diagnostics;
using Remus.Tests.EndToEnd;
using Remus.Tests.Support;
using Remus.Toolstack;
using Xunit;

namespace Remus.Tests.Toolstack;

/// <summary>
/// Volumes through the real CLI: `create` makes a missing source and `list` shows the volumes, `run --volume` refuses
/// bad values in one line, `restore --volumes DIR` keeps them under DIR, and a failed restore leaves no staging copy.
/// </summary>
public sealed class VolumeCliTests : IDisposable
{
    private readonly DomainTestBed _bed = new();

    public void Dispose() => _bed.Dispose();

    /// <summary>Writes "marker NAME" to /data/marker (when /data is writable), then prints "tick N" every 20 ms, forever.</summary>
    private const string VolumeTicker = """
        #include <fcntl.h>
        #include <stdio.h>
        #include <string.h>
        #include <unistd.h>
        int main(int argc, char **argv) {
            int fd = open("/data/marker", O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd >= 0) { dprintf(fd, "marker %s\n", argc > 1 ? argv[1] : "?"); fsync(fd); close(fd); }
            for (int i = 0;; i++) { printf("tick %d\n", i); fflush(stdout); usleep(20000); }
        }
        """;

    private string TickerConfig(string name, string volumeSource, string extra = "") => _bed.Config($"{name}.toml", $"""
        name = "{name}"
        memory = 16
        program = "{ToolstackGuests.Build("volticker", VolumeTicker)}"
        args = ["{name}"]
        console_log = "{name}.log"
        {extra}
        [[volume]]
        source = "{volumeSource}"
        target = "/data/"
        """);

    [Fact]
    public void Create_makes_the_source_and_list_shows_the_volumes_and_the_tmpfs()
    {
        _bed.Ok("create", TickerConfig("shop", "vols/shop"));
        string source = Path.Combine(_bed.Work, "vols", "shop");
        Assert.True(Directory.Exists(source), "the missing source directory was not created");

        var volumes = _bed.Domain("shop").Volumes;
        Assert.NotNull(volumes);
        Assert.Equal(2, volumes.Count);
        Assert.Equal(new VolumeInfo { Target = "/data", HostPath = source }, volumes[0]);
        Assert.Equal(new VolumeInfo { Target = "/tmp", Tmpfs = true }, volumes[1]);

        var text = _bed.Ok("list").StdoutText;
        Assert.Contains("Volumes", text);
        Assert.Contains($"/data={source}", text);
        _bed.Ok("destroy", "shop");
    }

    [Fact]
    public void Tmpfs_false_is_no_tmp_in_the_list()
    {
        _bed.Ok("create", TickerConfig("notmp", "d", "tmpfs = false"));
        var volume = Assert.Single(_bed.Domain("notmp").Volumes!);
        Assert.Equal("/data", volume.Target);
        _bed.Ok("destroy", "notmp");
    }

    /// <summary>
    /// Writes argv[2] into argv[1]/notes/hello.txt (fsync'ed), then writes /tmp/scratch and reads it back; prints what
    /// it did, or the failing call and errno.
    /// </summary>
    private const string Writer = """
        #include <errno.h>
        #include <fcntl.h>
        #include <stdio.h>
        #include <string.h>
        #include <sys/stat.h>
        #include <unistd.h>
        static int fail(const char *what) { printf("%s: errno %d\n", what, errno); return 1; }
        int main(int argc, char **argv) {
            char path[512], buf[64];
            snprintf(path, sizeof path, "%s/notes", argv[1]);
            if (mkdir(path, 0755) != 0 && errno != EEXIST) return fail("mkdir");
            snprintf(path, sizeof path, "%s/notes/hello.txt", argv[1]);
            int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0) return fail("open");
            if (write(fd, argv[2], strlen(argv[2])) != (ssize_t)strlen(argv[2])) return fail("write");
            if (fsync(fd) != 0) return fail("fsync");
            close(fd);
            printf("wrote %s\n", path);
            fd = open("/tmp/scratch", O_RDWR | O_CREAT | O_EXCL, 0600);
            if (fd < 0) { printf("no /tmp: errno %d\n", errno); return 0; }
            if (write(fd, "tmp", 3) != 3 || pread(fd, buf, 3, 0) != 3) return fail("tmp io");
            printf("tmp ok: %.3s\n", buf);
            return 0;
        }
        """;

    [Fact]
    public void Run_with_a_volume_writes_to_the_host_directory()
    {
        var writer = ToolstackGuests.Build("volwriter", Writer);
        var result = _bed.Remus(["run", "--volume", "shop:/data", writer, "/data", "hello from the domain"], null,
            workingDirectory: _bed.Work);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("wrote /data/notes/hello.txt\ntmp ok: tmp\n", result.StdoutText);
        string onHost = Path.Combine(_bed.Work, "shop", "notes", "hello.txt");
        Assert.True(File.Exists(onHost), "the file the program wrote is not in the host directory");
        Assert.Equal("hello from the domain", File.ReadAllText(onHost));
        Assert.Equal(["notes"], Directory.GetFileSystemEntries(Path.Combine(_bed.Work, "shop")).Select(Path.GetFileName));
    }

    [Fact]
    public void Run_without_tmpfs_has_no_tmp()
    {
        var writer = ToolstackGuests.Build("volwriter", Writer);
        var result = _bed.Remus(["run", "--no-tmpfs", "--volume", "shop:/data", writer, "/data", "x"], null, workingDirectory: _bed.Work);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.StartsWith("wrote /data/notes/hello.txt\nno /tmp: errno ", result.StdoutText); // EROFS: outside volumes the tree is read-only
    }

    [Theory]
    [InlineData("nocolon")]
    [InlineData("d:relative")]
    [InlineData("d:/")]
    [InlineData("d:/proc/self")]
    public void Run_refuses_a_bad_volume_as_a_usage_error(string value)
    {
        var result = _bed.Remus(["run", "--volume", value, ToolstackGuests.Build("streams", ToolstackGuests.Streams)], null,
            workingDirectory: _bed.Work);
        Assert.Equal(2, result.ExitCode);
        var line = Assert.Single(result.StderrText.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("remus: --volume", line);
        Assert.Empty(result.StdoutText);
    }

    [Theory]
    [InlineData("a:/d", "b:/d", "is the target of another volume too")]
    [InlineData("a:/d", "b:/d/e", "volumes cannot be inside one another")]
    [InlineData("a:/d", "a/b:/e", "cannot be inside another's")]
    [InlineData("a:/tmp/x", null, "is inside the tmpfs at /tmp")]
    public void Run_refuses_volumes_that_clash_in_one_line(string first, string? second, string expected)
    {
        var streams = ToolstackGuests.Build("streams", ToolstackGuests.Streams);
        string[] args = second is null ? ["run", "--volume", first, streams] : ["run", "--volume", first, "--volume", second, streams];
        var result = _bed.Remus(args, null, workingDirectory: _bed.Work);
        Assert.Equal(125, result.ExitCode);
        var line = Assert.Single(result.StderrText.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("remus: --volume", line);
        Assert.Contains(expected, line);
    }

    [Fact]
    public void Restore_with_volumes_dir_keeps_each_volume_at_dir_slash_target()
    {
        _bed.Ok("create", TickerConfig("kept", "orig"));
        DomainTestBed.WaitUntil(() => _bed.ReadLog("kept.log").Contains("tick 3"), "the ticker printed");
        string save = Path.Combine(_bed.Work, "kept.sav");
        _bed.Ok("save", "kept", save);
        DomainTestBed.WaitUntil(() => _bed.ProcessesOfThisRunDir().Count == 0, "the saved domain's VMM exits");

        string dir = Path.Combine(_bed.Work, "restored");
        var restored = _bed.Remus(["restore", "--volumes", "restored", save], null, workingDirectory: _bed.Work);
        Assert.True(restored.ExitCode == 0, restored.ToString());
        var volumes = _bed.Domain("kept").Volumes!;
        Assert.Equal(Path.Combine(dir, "data"), volumes[0].HostPath);
        Assert.True(volumes[1].Tmpfs);
        Assert.False(Directory.Exists(Path.Combine(dir, "data.remus-incoming")), "the staging copy was left behind");
        // The save file carried the volume's content; the saved domain's own directory is left as it was.
        Assert.Equal("marker kept\n", File.ReadAllText(Path.Combine(dir, "data", "marker")));
        Assert.Equal("marker kept\n", File.ReadAllText(Path.Combine(_bed.Work, "orig", "marker")));
        _bed.Ok("destroy", "kept");
    }

    /// <summary>A save file of a ticker with a volume at /data, cut in half.</summary>
    private string TruncatedSave(string name)
    {
        _bed.Ok("create", TickerConfig(name, "orig"));
        DomainTestBed.WaitUntil(() => _bed.ReadLog($"{name}.log").Contains("tick 3"), "the ticker printed");
        string save = Path.Combine(_bed.Work, $"{name}.sav");
        _bed.Ok("save", name, save);
        DomainTestBed.WaitUntil(() => _bed.ProcessesOfThisRunDir().Count == 0, "the saved domain's VMM exits");
        var bytes = File.ReadAllBytes(save);
        File.WriteAllBytes(save, bytes[..(bytes.Length / 2)]);
        return save;
    }

    /// <summary>A copy under way where a receiver builds its copy of the volume at /data under <paramref name="dir"/>.</summary>
    private static string StagingUnder(string dir)
    {
        string staging = Path.Combine(dir, "data.remus-incoming");
        Directory.CreateDirectory(Path.Combine(staging, "sub"));
        File.WriteAllText(Path.Combine(staging, "sub", "half"), "x");
        return staging;
    }

    [Fact]
    public void A_failed_restore_leaves_no_staging_copy()
    {
        string save = TruncatedSave("lost");
        string staging = StagingUnder(Path.Combine(_bed.Work, "restored"));

        var result = _bed.Remus(["restore", "--volumes", Path.Combine(_bed.Work, "restored"), save]);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("truncated", result.StderrText);
        Assert.False(Directory.Exists(staging), "the failed restore left its staging copy behind");
        Assert.Empty(_bed.List());
    }

    [Fact]
    public void A_failed_migration_leaves_no_staging_copy()
    {
        // A stream that ends in the middle of its first epoch, after the receiver built the domain from its header.
        string save = TruncatedSave("cut");
        string staging = StagingUnder(Path.Combine(_bed.Work, "received"));

        var result = _bed.Remus(["migrate-receive", "-F", "--volumes", "received"], File.ReadAllBytes(save), workingDirectory: _bed.Work);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("migration failed", result.StderrText);
        Assert.Contains("nothing was kept here", result.StderrText);
        Assert.False(Directory.Exists(staging), "the failed migration left its staging copy behind");
        Assert.Empty(_bed.List());
    }

    /// <summary>Creates NAME with its volume and protects it to a `migrate-receive -r --volumes DIR` on <paramref name="backupBed"/>.</summary>
    private (int Vmm, Receiver Backup, string Dir) Protected(string name, DomainTestBed backupBed)
    {
        string dir = Path.Combine(backupBed.Work, "vols");
        var backup = Receiver.Listen(backupBed, remus: true, out int port, "--allow-path", _bed.Work, "--volumes", dir);
        int vmm = E2E.VmmPid(_bed.Ok("create", TickerConfig(name, "orig")));
        DomainTestBed.WaitUntil(() => _bed.ReadLog($"{name}.log").Contains("tick 3"), "the ticker printed");
        var protect = _bed.Remus(["protect", "-i", "50", "--tcp", $"127.0.0.1:{port}", "--insecure", name], null, TimeSpan.FromSeconds(60));
        Assert.True(protect.ExitCode == 0, $"{protect}\n{backup.Describe()}");
        return (vmm, backup, dir);
    }

    [Fact]
    public void A_failover_moves_the_backups_copy_into_place_at_dir_slash_target()
    {
        using var backupBed = new DomainTestBed();
        var (vmm, backup, dir) = Protected("fo", backupBed);
        using (backup)
        {
            string staging = Path.Combine(dir, "data.remus-incoming");
            Assert.True(Directory.Exists(staging), "the backup builds its copy in the staging directory");
            Assert.False(Directory.Exists(Path.Combine(dir, "data")), "the backup's copy is in place before any failover");

            Process.GetProcessById(vmm).Kill(); // SIGKILL, this pid only
            backup.WaitForStderr("Remus failover for domain fo", TimeSpan.FromSeconds(30));
            DomainTestBed.WaitUntil(() => backupBed.List().Any(d => d.Name == "fo"), "the domain runs on the backup");
            Assert.Equal(Path.Combine(dir, "data"), backupBed.Domain("fo").Volumes![0].HostPath);
            Assert.Equal("marker fo\n", File.ReadAllText(Path.Combine(dir, "data", "marker")));
            Assert.False(Directory.Exists(staging), "the staging copy was left behind after the failover");
            backupBed.Ok("destroy", "fo");
        }
    }

    [Fact]
    public void A_backup_whose_primary_ends_protection_keeps_nothing()
    {
        using var backupBed = new DomainTestBed();
        var (_, backup, dir) = Protected("gone", backupBed);
        using (backup)
        {
            Assert.True(Directory.Exists(Path.Combine(dir, "data.remus-incoming")), "the backup builds its copy in the staging directory");
            _bed.Ok("destroy", "gone"); // protection ends with the domain: END, no takeover
            Assert.Equal(0, backup.WaitForExit(TimeSpan.FromSeconds(30)));
            Assert.Contains("nothing to take over", backup.Stderr);
            Assert.False(Directory.Exists(Path.Combine(dir, "data.remus-incoming")), "the backup kept its staging copy");
            Assert.False(Directory.Exists(Path.Combine(dir, "data")), "the backup moved a copy into place without a takeover");
        }
    }

    [Fact]
    public void Migrate_passes_volumes_only_to_a_receiver_it_starts()
    {
        var tcp = _bed.Remus("migrate", "--volumes", "/v", "--tcp", "127.0.0.1:1", "x");
        Assert.Contains("--volumes goes to the receiver", tcp.StderrText);
        var s = _bed.Remus("migrate", "--volumes", "/v", "-s", "", "x", "true");
        Assert.Contains("write --volumes DIR in the receiver command itself", s.StderrText);
    }

    [Fact]
    public void Migration_with_volumes_dir_keeps_the_volume_at_dir_slash_target()
    {
        using var target = new DomainTestBed();
        _bed.Ok("create", TickerConfig("moved", "orig"));
        DomainTestBed.WaitUntil(() => _bed.ReadLog("moved.log").Contains("tick 3"), "the ticker printed");
        string dir = Path.Combine(target.Work, "vols");
        string receiver = $"env REMUS_RUN_DIR='{target.RunDir}' '{RemusCli.DotnetPath}' '{RemusCli.DllPath}' migrate-receive --volumes '{dir}'" +
                          $" 2>>'{Path.Combine(target.Work, "receiver.err")}'";
        _bed.Ok("migrate", "-s", "", "moved", receiver);

        DomainTestBed.WaitUntil(() => target.List().Any(d => d.Name == "moved"), "the domain runs on the target under its name");
        var volumes = target.Domain("moved").Volumes!;
        Assert.Equal(Path.Combine(dir, "data"), volumes[0].HostPath);
        Assert.Equal("/data", volumes[0].Target);
        Assert.True(volumes[1].Tmpfs);
        DomainTestBed.WaitUntil(() => !Directory.Exists(Path.Combine(dir, "data.remus-incoming")),
            "the staging copy is moved into place once the source let go");
        Assert.Equal("marker moved\n", File.ReadAllText(Path.Combine(dir, "data", "marker")));
        target.Ok("destroy", "moved");
    }
}
