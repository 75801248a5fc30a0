using Remus.Toolstack.Config;
using Remus.Toolstack.Security;
using Xunit;

namespace Remus.Tests.Toolstack.Security;

/// <summary>
/// Issue 13: <see cref="ReceivePolicy.Check(DomainConfig)"/> judges every host path an incoming configuration names
/// (program, files, console_log, volume sources, the netns as /run/netns/NAME) and its memory, before the receiver
/// creates anything; a refusal is one line naming the key and the value.
/// </summary>
public sealed class PolicyCheckTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("remus-policy-").FullName;
    private readonly string _allowed, _sibling, _outside;

    public PolicyCheckTests()
    {
        _allowed = Dir("remus");
        _sibling = Dir("remus2");
        _outside = Dir("outside");
        File.WriteAllText(Path.Combine(_allowed, "prog"), "");
        File.WriteAllText(Path.Combine(_allowed, "data.txt"), "");
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Dir(string name) => Directory.CreateDirectory(Path.Combine(_root, name)).FullName;

    private string In(string name) => Path.Combine(_allowed, name);

    /// <summary>A config whose every host path is under the allowed folder.</summary>
    private DomainConfig Allowed() => new()
    {
        Name = "web",
        Program = In("prog"),
        Files = [In("data.txt"), _allowed],
        ConsoleLog = In("web.log"),
        Volumes = [new VolumeConfig { Source = In("vol"), Target = "/data" }],
        Network = new NetworkConfig { Tap = "rmweb0", Address = "10.99.0.2/24", Mac = "02:52:4d:00:00:02", Netns = "rmlab" },
    };

    private ReceivePolicy Policy => new() { AllowedPaths = [_allowed, ReceivePolicy.NetnsDirectory] };

    private static PolicyViolationException Refused(ReceivePolicy policy, DomainConfig config, string? volumes = null) =>
        Assert.Throws<PolicyViolationException>(() => policy.Check(config, volumes));

    [Fact]
    public void A_config_whose_paths_are_all_under_allowed_prefixes_passes()
    {
        Policy.Check(Allowed());
    }

    public static TheoryData<string> Keys() => ["program", "files", "console_log", "[[volume]] source", "[network] netns"];

    /// <summary><see cref="Allowed"/> with the path under <paramref name="key"/> moved to <paramref name="path"/>.</summary>
    private DomainConfig With(string key, string path) => key switch
    {
        "program" => Allowed() with { Program = path },
        "files" => Allowed() with { Files = [In("data.txt"), path] },
        "console_log" => Allowed() with { ConsoleLog = path },
        "[[volume]] source" => Allowed() with { Volumes = [new VolumeConfig { Source = path, Target = "/data" }] },
        _ => throw new ArgumentException(key),
    };

    [Theory]
    [MemberData(nameof(Keys))]
    public void Each_key_outside_the_allowed_paths_is_refused_in_one_line_naming_the_key_and_the_value(string key)
    {
        var config = key == "[network] netns"
            ? Allowed() with { Network = Allowed().Network! with { Netns = "other" } }
            : With(key, Path.Combine(_outside, "x"));
        var policy = key == "[network] netns" ? new ReceivePolicy { AllowedPaths = [_allowed, "/run/netns/rmlab"] } : Policy;
        var e = Refused(policy, config);
        string value = key == "[network] netns" ? "/run/netns/other" : Path.Combine(_outside, "x");
        Assert.Equal(key, e.Key);
        Assert.Equal(value, e.Value);
        Assert.Equal(
            $"refused: the stream asks for {key} '{value}' outside the paths this receiver allows (--allow-path or allow_paths in /etc/remus/host.toml); nothing was created",
            e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [MemberData(nameof(Keys))]
    public void With_nothing_allowed_every_host_path_is_refused(string key)
    {
        // Only the program's own path is allowed; the config keeps just the key under test besides it.
        var policy = new ReceivePolicy { AllowedPaths = [In("prog")] };
        var bare = Allowed() with { Files = [], ConsoleLog = null, Volumes = [], Network = null };
        policy.Check(bare);
        var config = key switch
        {
            "program" => bare with { Program = In("data.txt") },
            "files" => bare with { Files = Allowed().Files },
            "console_log" => bare with { ConsoleLog = Allowed().ConsoleLog },
            "[[volume]] source" => bare with { Volumes = Allowed().Volumes },
            _ => bare with { Network = Allowed().Network },
        };
        Assert.Equal(key, Refused(policy, config).Key);
    }

    [Fact]
    public void The_default_policy_refuses_the_program_path_first()
    {
        var e = Refused(new ReceivePolicy(), Allowed());
        Assert.Equal("program", e.Key);
    }

    [Fact]
    public void A_path_with_dot_dot_is_refused_outright_even_when_it_would_land_inside()
    {
        string sneaky = _allowed + "/sub/../data.txt";
        var e = Refused(Policy, With("files", sneaky));
        Assert.Equal("files", e.Key);
        Assert.Contains("\"..\"", e.Message);
        // Even without a path restriction.
        Assert.Throws<PolicyViolationException>(() => ReceivePolicy.Unrestricted.Check(With("console_log", "/tmp/../etc/x")));
    }

    [Fact]
    public void A_relative_path_is_refused()
    {
        var e = Refused(Policy, With("console_log", "web.log"));
        Assert.Contains("not an absolute path", e.Message);
    }

    [Fact]
    public void A_prefix_allows_only_on_a_component_boundary()
    {
        // /srv/remus2 is not under /srv/remus.
        var e = Refused(Policy, With("console_log", Path.Combine(_sibling, "web.log")));
        Assert.Equal("console_log", e.Key);
        // The prefix itself, a trailing slash and redundant separators are fine.
        Policy.Check(With("files", _allowed + "/"));
        Policy.Check(With("files", _allowed + "//./data.txt"));
        new ReceivePolicy { AllowedPaths = [_allowed + "/", ReceivePolicy.NetnsDirectory] }.Check(Allowed());
    }

    [Fact]
    public void A_symlink_under_an_allowed_prefix_that_leads_out_is_refused()
    {
        File.CreateSymbolicLink(In("etc"), "/etc");
        var e = Refused(Policy, With("console_log", In("etc/passwd")));
        Assert.Equal("console_log", e.Key);
        Assert.Contains("leads to '/etc/passwd'", e.Message);
        // A relative link climbing out, through a link inside.
        File.CreateSymbolicLink(In("up"), "../outside");
        Assert.Equal("files", Refused(Policy, With("files", In("up"))).Key);
    }

    [Fact]
    public void A_dangling_symlink_is_followed_to_the_file_it_would_create()
    {
        // console_log is opened for append, creating it: through this link it would create a file outside.
        File.CreateSymbolicLink(In("web.log"), Path.Combine(_outside, "new.log"));
        var e = Refused(Policy, Allowed());
        Assert.Equal("console_log", e.Key);
        Assert.False(File.Exists(Path.Combine(_outside, "new.log")));
    }

    [Fact]
    public void A_symlink_that_stays_inside_and_an_allowed_prefix_that_is_itself_a_symlink_pass()
    {
        File.CreateSymbolicLink(In("alias"), "data.txt");
        Policy.Check(With("files", In("alias")));
        string link = Path.Combine(_root, "link");
        Directory.CreateSymbolicLink(link, _allowed);
        var viaLink = new ReceivePolicy { AllowedPaths = [link, ReceivePolicy.NetnsDirectory] };
        viaLink.Check(Allowed());
        viaLink.Check(With("console_log", Path.Combine(link, "x.log")));
    }

    [Fact]
    public void A_symlink_loop_is_refused()
    {
        File.CreateSymbolicLink(In("a"), In("b"));
        File.CreateSymbolicLink(In("b"), In("a"));
        var e = Refused(Policy, With("console_log", In("a")));
        Assert.Contains("symbolic links", e.Message);
    }

    [Fact]
    public void Memory_above_the_limit_is_refused_naming_it()
    {
        var policy = Policy with { MaxMemoryMiB = 512 };
        policy.Check(Allowed() with { MemoryMiB = 512 });
        var e = Refused(policy, Allowed() with { MemoryMiB = 513 });
        Assert.Equal("memory", e.Key);
        Assert.Equal("513", e.Value);
        Assert.Equal("refused: the stream asks for memory 513 MiB, more than this receiver allows (512 MiB: --max-memory or max_memory in /etc/remus/host.toml); nothing was created", e.Message);
        // Every receiver: an unrestricted one too.
        Assert.Equal("memory", Refused(ReceivePolicy.Unrestricted with { MaxMemoryMiB = 512 }, Allowed() with { MemoryMiB = 4096 }).Key);
        Assert.Equal("memory", Refused(Policy, Allowed() with { MemoryMiB = 0 }).Key);
    }

    [Fact]
    public void The_refusal_names_the_host_config_the_policy_came_from()
    {
        var e = Refused(new ReceivePolicy { HostConfigPath = "/opt/remus.toml" }, Allowed());
        Assert.Contains("allow_paths in /opt/remus.toml", e.Message);
    }

    [Fact]
    public void An_unrestricted_policy_allows_any_absolute_path()
    {
        ReceivePolicy.Unrestricted.Check(With("console_log", "/var/log/anything.log"));
        Assert.False(ReceivePolicy.Unrestricted.RestrictPaths);
        Assert.True(new ReceivePolicy().RestrictPaths);
    }

    [Fact]
    public void With_a_volumes_directory_volume_sources_must_lie_under_it_and_not_under_the_allowed_paths()
    {
        string volumes = Dir("volumes");
        var placed = Allowed().WithVolumesUnder(volumes);
        Policy.Check(placed, volumes);
        // A source the receiver did not place (the stream's own) is judged against the volumes directory.
        var e = Refused(Policy, Allowed(), volumes);
        Assert.Equal("[[volume]] source", e.Key);
        Assert.Contains("--volumes", e.Message);
        // A target that is not a normalised guest path cannot lead a placed volume out of the directory.
        var climbing = Allowed() with { Volumes = [new VolumeConfig { Source = _outside, Target = "/../../outside" }] };
        Assert.Equal("[[volume]] target", Refused(Policy, climbing.WithVolumesUnder(volumes), volumes).Key);
    }

    [Fact]
    public void A_netns_name_that_is_not_a_name_is_refused()
    {
        var config = Allowed() with { Network = Allowed().Network! with { Netns = "../../etc" } };
        Assert.Equal("[network] netns", Refused(ReceivePolicy.Unrestricted, config).Key);
    }
}
