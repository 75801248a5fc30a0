using Remus.Toolstack.Config;
using Remus.Toolstack.Security;
using Xunit;

namespace Remus.Tests.Toolstack.Security;

/// <summary>
/// Issue 13: the host-wide config (/etc/remus/host.toml or REMUS_HOST_CONFIG): [tls] cert/key/ca (all three), or
/// [psk] file (not both), and [receive] allow_paths/max_memory/max_vcpus. Files relative to the config's folder;
/// unknown keys refused; every problem one line "file:line: message"; a missing file is an empty config.
/// </summary>
public sealed class HostConfigTests
{
    private const string Folder = "/etc/remus";

    private static HostConfig Parse(string toml) => HostConfig.Parse(toml, "host.toml", Folder);

    private static string Error(string toml) => Assert.Throws<ConfigException>(() => Parse(toml)).Message;

    [Fact]
    public void Reads_tls_and_the_receive_policy_with_files_relative_to_the_config_folder()
    {
        var config = Parse("""
            # this host
            [tls]
            cert = "host.crt"
            key = "/secrets/host.key"
            ca = "../pki/ca.crt"

            [receive]
            allow_paths = ["/srv/remus", "/var/log/remus/"]
            max_memory = 8192
            max_vcpus = 64
            """);
        Assert.Equal(ChannelMode.Tls, config.Security!.Mode);
        Assert.Equal("/etc/remus/host.crt", config.Security.CertFile);
        Assert.Equal("/secrets/host.key", config.Security.KeyFile);
        Assert.Equal("/etc/pki/ca.crt", config.Security.CaFile);
        Assert.Null(config.Security.PskFile);
        Assert.True(config.HasAllowPaths);
        Assert.Equal(["/srv/remus", "/var/log/remus/"], config.Policy.AllowedPaths);
        Assert.Equal(8192, config.Policy.MaxMemoryMiB);
        Assert.Equal(64, config.Policy.MaxVcpus);
        Assert.True(config.Policy.RestrictPaths);
        Assert.Equal("host.toml", config.Policy.HostConfigPath);
    }

    [Fact]
    public void Reads_a_pre_shared_key_file()
    {
        var config = Parse("[psk]\nfile = \"psk\"\n");
        Assert.Equal(ChannelMode.Psk, config.Security!.Mode);
        Assert.Equal("/etc/remus/psk", config.Security.PskFile);
        Assert.False(config.HasAllowPaths);
        Assert.Empty(config.Policy.AllowedPaths);
        Assert.Equal(new ReceivePolicy().MaxMemoryMiB, config.Policy.MaxMemoryMiB);
        Assert.Equal(new ReceivePolicy().MaxVcpus, config.Policy.MaxVcpus);
    }

    [Fact]
    public void An_empty_file_configures_nothing_and_an_empty_allow_paths_is_still_said()
    {
        var empty = Parse("");
        Assert.Null(empty.Security);
        Assert.False(empty.HasAllowPaths);
        var none = Parse("[receive]\nallow_paths = []\n");
        Assert.True(none.HasAllowPaths);
        Assert.Empty(none.Policy.AllowedPaths);
    }

    [Fact]
    public void A_missing_file_is_an_empty_config()
    {
        string path = Path.Combine(Path.GetTempPath(), $"remus-no-such-{Guid.NewGuid():N}", "host.toml");
        var config = HostConfig.Load(path);
        Assert.Null(config.Security);
        Assert.False(config.HasAllowPaths);
        Assert.Equal(path, config.FilePath);
        Assert.Equal(path, config.Policy.HostConfigPath);
    }

    [Fact]
    public void Load_reads_the_file_REMUS_HOST_CONFIG_names_relative_to_its_folder()
    {
        var dir = Directory.CreateTempSubdirectory("remus-host-");
        string file = Path.Combine(dir.FullName, "host.toml");
        File.WriteAllText(file, "[psk]\nfile = \"key\"\n[receive]\nmax_vcpus = 3\n");
        string? before = Environment.GetEnvironmentVariable(HostConfig.PathVariable);
        try
        {
            Environment.SetEnvironmentVariable(HostConfig.PathVariable, file);
            var config = HostConfig.Load();
            Assert.Equal(Path.Combine(dir.FullName, "key"), config.Security!.PskFile);
            Assert.Equal(3, config.Policy.MaxVcpus);
            Assert.Equal(file, config.FilePath);
        }
        finally
        {
            Environment.SetEnvironmentVariable(HostConfig.PathVariable, before);
            dir.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData("[tls]\ncert = \"a\"\nkey = \"b\"\n", "host.toml:1: [tls] needs cert, key and ca together (missing: ca)")]
    [InlineData("[tls]\nca = \"c\"\n", "host.toml:1: [tls] needs cert, key and ca together (missing: cert, key)")]
    [InlineData("[tls]\ncert = \"a\"\nkey = \"b\"\nca = \"c\"\n[psk]\nfile = \"p\"\n", "host.toml:5: [tls] and [psk] cannot both be set: choose certificates or a pre-shared key")]
    [InlineData("[psk]\n", "host.toml:1: [psk] needs file = \"PATH\" (the file holding the pre-shared key)")]
    [InlineData("[psk]\nfile = \"\"\n", "host.toml:2: 'file' in [psk] cannot be empty")]
    [InlineData("[psk]\nfile = 3\n", "host.toml:2: 'psk.file' must be a string, not an integer")]
    [InlineData("[tls]\ncert = \"a\"\ncrt = \"b\"\n", "host.toml:3: unknown key 'crt' in [tls] (known keys: cert, key, ca)")]
    [InlineData("[receive]\nallow_path = [\"/srv\"]\n", "host.toml:2: unknown key 'allow_path' in [receive] (known keys: allow_paths, max_memory, max_vcpus)")]
    [InlineData("\n[ssh]\nport = 22\n", "host.toml:2: unknown table '[ssh]' (the host config has the tables [tls], [psk] and [receive])")]
    [InlineData("insecure = true\n", "host.toml:1: unknown key 'insecure' (the host config has the tables [tls], [psk] and [receive])")]
    [InlineData("tls = { cert = \"a\" }\n", "host.toml:1: write 'tls' as a table: [tls] and its keys below it")]
    [InlineData("[[receive]]\nmax_vcpus = 1\n", "host.toml:1: 'receive' must be one table, like [receive]")]
    [InlineData("[receive]\nmax_vcpus = 1\n[receive]\nmax_memory = 64\n", "host.toml:3: table [receive] is defined twice")]
    [InlineData("[receive]\nmax_vcpus = 1\nmax_vcpus = 2\n", "host.toml:3: duplicate key 'max_vcpus' in [receive] (first set on line 2)")]
    [InlineData("[receive]\nallow_paths = [\"srv/remus\"]\n", "host.toml:2: 'allow_paths' must hold absolute paths, not \"srv/remus\"")]
    [InlineData("[receive]\nallow_paths = [\"/srv/../etc\"]\n", "host.toml:2: 'allow_paths' cannot contain \"..\" (\"/srv/../etc\"): write the path it means")]
    [InlineData("[receive]\nallow_paths = \"/srv\"\n", "host.toml:2: 'allow_paths' must be an array of absolute paths, not a string")]
    [InlineData("[receive]\nallow_paths = [\"/srv\", 4]\n", "host.toml:2: 'allow_paths' must be an array of strings, but item 2 is an integer")]
    [InlineData("[receive]\nmax_memory = \"8G\"\n", "host.toml:2: 'max_memory' must be an integer (MiB), not a string")]
    [InlineData("[receive]\nmax_memory = 1\n", "host.toml:2: 'max_memory' must be between 4 and 65536 MiB, not 1")]
    [InlineData("[receive]\nmax_vcpus = 0\n", "host.toml:2: 'max_vcpus' must be between 1 and 1024, not 0")]
    [InlineData("[receive]\nmax_vcpus = 5000\n", "host.toml:2: 'max_vcpus' must be between 1 and 1024, not 5000")]
    public void Each_problem_is_one_line_naming_the_file_and_line(string toml, string expected)
    {
        Assert.Equal(expected, Error(toml));
    }

    [Fact]
    public void A_syntax_error_names_the_file_line_and_column()
    {
        Assert.StartsWith("host.toml:2:", Error("[tls]\ncert = \n"));
    }

    [Fact]
    public void Dotted_keys_at_the_top_work_like_the_tables()
    {
        var config = Parse("psk.file = \"k\"\nreceive.max_vcpus = 2\n");
        Assert.Equal("/etc/remus/k", config.Security!.PskFile);
        Assert.Equal(2, config.Policy.MaxVcpus);
    }
}
