using System.Text.Json;
using Remus.Toolstack;
using Remus.Toolstack.Config;
using Remus.Toolstack.Migration;
using Remus.Toolstack.Vmm;
using Xunit;

namespace Remus.Tests.Toolstack;

/// <summary>[[volume]] and tmpfs in a config, --volume, the stream's form and a receiver's --volumes DIR.</summary>
public sealed class VolumeConfigTests
{
    private const string Folder = "/srv/domains";
    private const string Head = "name = \"a\"\nprogram = \"p\"\n";

    private static DomainConfig Parse(string toml) => ConfigLoader.Parse(toml, "web.toml", Folder);

    private static string Error(string toml) => Assert.Throws<ConfigException>(() => Parse(toml)).Message;

    [Fact]
    public void Volumes_resolve_against_the_config_folder_and_come_before_the_tmpfs()
    {
        var config = Parse(Head + """
            [[volume]]
            source = "data/shop/"
            target = "/data"

            [[volume]]
            source = "/var/lib/cache"
            target = "//srv//cache/"
            """);
        Assert.Equal(
            [new VolumeConfig { Source = "/srv/domains/data/shop", Target = "/data" }, new VolumeConfig { Source = "/var/lib/cache", Target = "/srv/cache" }],
            config.Volumes);
        Assert.True(config.Tmpfs);
        var specs = config.ToSpec().Volumes;
        Assert.Equal(3, specs.Count);
        Assert.Equal(("/srv/domains/data/shop", "/data", false), (specs[0].HostPath, specs[0].GuestPath, specs[0].Tmpfs));
        Assert.Equal(("/var/lib/cache", "/srv/cache", false), (specs[1].HostPath, specs[1].GuestPath, specs[1].Tmpfs));
        Assert.Equal(("/tmp", true), (specs[2].GuestPath, specs[2].Tmpfs));
    }

    [Fact]
    public void Every_domain_has_a_tmpfs_at_tmp_by_default()
    {
        var spec = Parse(Head).ToSpec();
        var tmpfs = Assert.Single(spec.Volumes);
        Assert.Equal("/tmp", tmpfs.GuestPath);
        Assert.True(tmpfs.Tmpfs);
        // And a config built in code (what tests and tools make) has it too.
        Assert.True(Assert.Single(new DomainConfig { Name = "a", Program = "/p" }.ToSpec().Volumes).Tmpfs);
    }

    [Fact]
    public void Tmpfs_false_means_no_tmp()
    {
        var config = Parse(Head + "tmpfs = false\n");
        Assert.False(config.Tmpfs);
        Assert.Empty(config.ToSpec().Volumes);
    }

    [Fact]
    public void A_volume_at_tmp_replaces_the_tmpfs()
    {
        var spec = Parse(Head + "[[volume]]\nsource = \"scratch\"\ntarget = \"/tmp\"\n").ToSpec();
        var only = Assert.Single(spec.Volumes);
        Assert.False(only.Tmpfs);
        Assert.Equal(("/srv/domains/scratch", "/tmp"), (only.HostPath, only.GuestPath));
    }

    [Fact]
    public void A_volume_inside_tmp_is_fine_without_the_tmpfs()
    {
        var config = Parse(Head + "tmpfs = false\n[[volume]]\nsource = \"c\"\ntarget = \"/tmp/cache\"\n");
        Assert.Equal("/tmp/cache", Assert.Single(config.ToSpec().Volumes).GuestPath);
    }

    [Theory]
    [InlineData("tmpfs = \"yes\"\n", "web.toml:3: 'tmpfs' must be true or false, not a string")]
    [InlineData("tmpfs = true\ntmpfs = false\n", "web.toml:4: duplicate key 'tmpfs' (first set on line 3)")]
    [InlineData("volume = \"data:/data\"\n", "web.toml:3: write each volume as a [[volume]] table")]
    [InlineData("volume.source = \"d\"\n", "web.toml:3: write each volume as a [[volume]] table")]
    [InlineData("[volume]\nsource = \"d\"\ntarget = \"/d\"\n", "web.toml:3: write each volume as a [[volume]] table")]
    [InlineData("[[volume]]\ntarget = \"/d\"\n", "web.toml:3: [[volume]] needs 'source'")]
    [InlineData("[[volume]]\nsource = \"d\"\n", "web.toml:3: [[volume]] needs 'target'")]
    [InlineData("[[volume]]\nsource = \"d\"\ntarget = \"/d\"\nmode = \"rw\"\n", "web.toml:6: unknown key 'mode' in [[volume]] (known keys: source, target)")]
    [InlineData("[[volume]]\nsource = \"d\"\nsource = \"e\"\ntarget = \"/d\"\n", "web.toml:5: duplicate key 'source' in [[volume]] (first set on line 4)")]
    [InlineData("[[volume]]\nsource = 3\ntarget = \"/d\"\n", "web.toml:4: 'source' must be a string, not an integer")]
    [InlineData("[[volume]]\nsource = \"\"\ntarget = \"/d\"\n", "web.toml:4: 'source' cannot be empty")]
    [InlineData("[[volume]]\nsource = \"d\"\ntarget = [\"/d\"]\n", "web.toml:5: 'target' must be a string, not an array")]
    [InlineData("[[volume]]\nsource = \"d\"\ntarget = \"\"\n", "web.toml:5: 'target' cannot be empty")]
    [InlineData("[[volume]]\nsource = \"d\"\ntarget = \"data\"\n", "web.toml:5: 'target' must be an absolute guest path like \"/data\", not \"data\"")]
    [InlineData("[[volume]]\nsource = \"d\"\ntarget = \"/\"\n", "web.toml:5: 'target' cannot be \"/\"")]
    [InlineData("[[volume]]\nsource = \"d\"\ntarget = \"//\"\n", "web.toml:5: 'target' cannot be \"/\"")]
    [InlineData("[[volume]]\nsource = \"d\"\ntarget = \"/data/../etc\"\n", "web.toml:5: 'target' cannot contain \".\" or \"..\"")]
    [InlineData("[[volume]]\nsource = \"d\"\ntarget = \"/proc/x\"\n", "web.toml:5: 'target' cannot be /proc or under it")]
    [InlineData("[[volume]]\nsource = \"d\"\ntarget = \"/dev\"\n", "web.toml:5: 'target' cannot be /dev or under it")]
    [InlineData("[[volume]]\nsource = \"d\"\ntarget = \"/tmp/x\"\n", "web.toml:5: 'target' /tmp/x is inside the tmpfs at /tmp")]
    [InlineData("[[volume]]\nsource = \"d\"\ntarget = \"/d\"\n[[volume]]\nsource = \"e\"\ntarget = \"/d/\"\n",
        "web.toml:8: 'target' /d is the target of another volume too")]
    [InlineData("[[volume]]\nsource = \"d\"\ntarget = \"/d\"\n[[volume]]\nsource = \"e\"\ntarget = \"/d/e\"\n",
        "web.toml:8: 'target' /d/e and /d: volumes cannot be inside one another")]
    [InlineData("[[volume]]\nsource = \"d/e\"\ntarget = \"/e\"\n[[volume]]\nsource = \"d\"\ntarget = \"/d\"\n",
        "web.toml:7: 'source' /srv/domains/d and /srv/domains/d/e (the volume at /e): a volume's host directory cannot be inside another's")]
    [InlineData("[[volume]]\nsource = \"d\"\ntarget = \"/a\"\n[[volume]]\nsource = \"./d/\"\ntarget = \"/b\"\n",
        "web.toml:7: 'source' /srv/domains/d is the source of the volume at /a too")]
    [InlineData("[[volume]]\nsource = \"d\"\ntarget = \"/a\"\n[volume]\nx = 1\n", "web.toml:6: ")]
    public void Bad_volumes_are_refused_naming_the_key_and_line(string tail, string expected)
    {
        Assert.StartsWith(expected, Error(Head + tail));
    }

    [Fact]
    public void A_source_that_is_a_file_is_refused()
    {
        var folder = Directory.CreateTempSubdirectory("remus-volcfg-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(folder, "plain"), "x");
            var e = Assert.Throws<ConfigException>(() =>
                ConfigLoader.Parse(Head + "[[volume]]\nsource = \"plain\"\ntarget = \"/d\"\n", "web.toml", folder));
            Assert.Equal($"web.toml:4: 'source' {folder}/plain is a file, not a directory", e.Message);
            var run = Assert.Throws<RemusException>(() =>
                VolumeConfig.PrepareSources([new VolumeConfig { Source = Path.Combine(folder, "plain"), Target = "/d" }]));
            Assert.Contains("is a file, not a directory", run.Message);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Missing_sources_are_created_with_their_parents()
    {
        var folder = Directory.CreateTempSubdirectory("remus-volcfg-").FullName;
        try
        {
            var source = Path.Combine(folder, "a", "b", "shop");
            VolumeConfig.PrepareSources([new VolumeConfig { Source = source, Target = "/data" }]);
            Assert.True(Directory.Exists(source));
            VolumeConfig.PrepareSources([new VolumeConfig { Source = source, Target = "/data" }]); // exists: fine
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Theory]
    [InlineData("data:/data", "data", "/data")]
    [InlineData("/srv/x:y:/mnt//x/", "/srv/x:y", "/mnt/x")]
    [InlineData("./a/:/a", "a", "/a")]
    public void Volume_option_is_source_colon_target(string text, string source, string target)
    {
        var v = VolumeConfig.ParseOption(text, out var problem);
        Assert.Null(problem);
        Assert.Equal(Path.TrimEndingDirectorySeparator(Path.GetFullPath(source)), v!.Source);
        Assert.Equal(target, v.Target);
    }

    [Theory]
    [InlineData("data", "--volume wants SOURCE:TARGET")]
    [InlineData(":/data", "--volume wants SOURCE:TARGET")]
    [InlineData("data:", "--volume wants SOURCE:TARGET")]
    [InlineData("data:rel", "--volume data:rel: 'target' must be an absolute guest path")]
    [InlineData("data:/", "--volume data:/: 'target' cannot be \"/\"")]
    [InlineData("data:/sys/x", "--volume data:/sys/x: 'target' cannot be /sys or under it")]
    public void Bad_volume_options_say_what_is_wrong(string text, string expected)
    {
        Assert.Null(VolumeConfig.ParseOption(text, out var problem));
        Assert.StartsWith(expected, problem);
    }

    [Fact]
    public void The_stream_carries_volumes_and_the_tmpfs_setting()
    {
        var config = Parse(Head + "tmpfs = false\n[[volume]]\nsource = \"d\"\ntarget = \"/data\"\n");
        var json = JsonSerializer.SerializeToUtf8Bytes(config, ToolstackJson.Default.DomainConfig);
        var back = IncomingVmm.ParseConfig(json);
        Assert.Equal(config.Volumes, back.Volumes);
        Assert.False(back.Tmpfs);
        Assert.DoesNotContain(back.ToSpec().Volumes, v => v.Tmpfs);
        // A stream written before volumes existed: no volumes, and the tmpfs every domain has now.
        var old = IncomingVmm.ParseConfig("""{"Name":"a","Program":"/p"}"""u8.ToArray());
        Assert.Empty(old.Volumes);
        Assert.True(old.Tmpfs);
    }

    [Fact]
    public void Receivers_keep_volumes_under_their_directory_by_target()
    {
        var config = Parse(Head + "[[volume]]\nsource = \"d\"\ntarget = \"/data\"\n[[volume]]\nsource = \"/var/x\"\ntarget = \"/srv/cache\"\n");
        var moved = config.WithVolumesUnder("/backup/vols");
        Assert.Equal(["/backup/vols/data", "/backup/vols/srv/cache"], moved.Volumes.Select(v => v.Source));
        Assert.Equal(["/data", "/srv/cache"], moved.Volumes.Select(v => v.Target));
        var spec = moved.ToSpec().Volumes;
        Assert.Equal(["/backup/vols/data", "/backup/vols/srv/cache", ""], spec.Select(v => v.HostPath));
        Assert.True(spec[2].Tmpfs); // the tmpfs is the domain's memory: no host path to rewrite
        // Without --volumes: the sender's host paths, as on a separate host.
        Assert.Same(config, config.WithVolumesUnder(null));
    }

    [Fact]
    public void Migrate_and_protect_pass_volumes_to_the_receiver_command()
    {
        var target = new MigrationTarget { Host = "backup1", Remus = true, VolumesDirectory = "/srv/remus volumes" };
        Assert.Equal("ssh backup1 remus migrate-receive -r --volumes '/srv/remus volumes'", target.ReceiverCommand);
        Assert.Equal("ssh b remus migrate-receive --volumes /v", (target with { Host = "b", Remus = false, VolumesDirectory = "/v" }).ReceiverCommand);
        Assert.Equal("'it'\\''s'", MigrationTarget.ShellQuote("it's"));
    }
}
