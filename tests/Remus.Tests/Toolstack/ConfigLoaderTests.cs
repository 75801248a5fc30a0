using Remus.Sandbox.Platform;
using Remus.Toolstack.Config;
using Xunit;

namespace Remus.Tests.Toolstack;

public sealed class ConfigLoaderTests
{
    private const string Folder = "/srv/domains";

    private static DomainConfig Parse(string toml) => ConfigLoader.Parse(toml, "web.toml", Folder);

    private static string Error(string toml) => Assert.Throws<ConfigException>(() => Parse(toml)).Message;

    [Fact]
    public void Reads_every_key_and_resolves_paths_against_the_config_folder()
    {
        var config = Parse("""
            # a comment
            name = "web-1.prod_a"
            memory = 64
            program = "bin/server"
            args = ["--port", "8080", ""]
            files = ["data/", "/etc/hosts"]
            console_log = "../logs/web.log"

            [env]
            GREETING = "hello world"
            "WITH SPACE" = 'literal'
            EMPTY = ""
            """);
        Assert.Equal("web-1.prod_a", config.Name);
        Assert.Equal(64, config.MemoryMiB);
        Assert.Equal("/srv/domains/bin/server", config.Program);
        Assert.Equal("bin/server", config.Argv0);
        Assert.Equal(["--port", "8080", ""], config.Args);
        Assert.Equal(["/srv/domains/data", "/etc/hosts"], config.Files.Select(f => f.TrimEnd('/')));
        Assert.Equal("/srv/logs/web.log", config.ConsoleLog);
        Assert.Equal(
            [new("GREETING", "hello world"), new("WITH SPACE", "literal"), new("EMPTY", "")],
            config.Env);
        Assert.Equal("web.toml", config.SourcePath);
    }

    [Fact]
    public void Defaults_for_optional_keys()
    {
        var config = Parse("name = \"a\"\nprogram = \"/bin/prog\"\n");
        Assert.Equal(DomainConfig.DefaultMemoryMiB, config.MemoryMiB);
        Assert.Equal("/bin/prog", config.Program);
        Assert.Empty(config.Args);
        Assert.Empty(config.Env);
        Assert.Empty(config.Files);
        Assert.Null(config.ConsoleLog);
        Assert.Equal(PlatformKind.Auto, config.Platform);
        Assert.Equal(PlatformKind.Auto, config.ToSpec().Platform);
    }

    [Theory]
    [InlineData("auto", PlatformKind.Auto)]
    [InlineData("kvm", PlatformKind.Kvm)]
    [InlineData("ptrace", PlatformKind.Ptrace)]
    public void Platform_key_flows_into_the_domain_spec(string value, PlatformKind expected)
    {
        var config = Parse($"name = \"a\"\nprogram = \"p\"\nplatform = \"{value}\"\n");
        Assert.Equal(expected, config.Platform);
        Assert.Equal(expected, config.ToSpec().Platform);
        // ... and through the JSON a VMM receives (and a checkpoint stream carries), as a word.
        string json = System.Text.Json.JsonSerializer.Serialize(config, Remus.Toolstack.ToolstackJson.Default.DomainConfig);
        Assert.Contains($"\"Platform\":\"{value}\"", json);
        Assert.Equal(expected, System.Text.Json.JsonSerializer.Deserialize(json, Remus.Toolstack.ToolstackJson.Default.DomainConfig)!.Platform);
    }

    [Fact]
    public void Env_as_inline_table_or_dotted_keys()
    {
        Assert.Equal([new("A", "1"), new("B", "2")],
            Parse("name = \"a\"\nprogram = \"p\"\nenv = { A = \"1\", B = \"2\" }\n").Env);
        Assert.Equal([new("A", "1"), new("B", "2")],
            Parse("name = \"a\"\nprogram = \"p\"\nenv.A = \"1\"\nenv.B = \"2\"\n").Env);
    }

    [Fact]
    public void Spec_carries_everything_to_the_sandbox()
    {
        var spec = Parse("name = \"a\"\nprogram = \"p\"\nmemory = 32\nargs = [\"x\"]\nfiles = [\"f\"]\n[env]\nK = \"v\"\n").ToSpec();
        Assert.Equal("/srv/domains/p", spec.ProgramPath);
        Assert.Equal("p", spec.Argv0);
        Assert.Equal(["x"], spec.Args);
        Assert.Equal([new("K", "v")], spec.Env);
        Assert.Equal(["/srv/domains/f"], spec.Files);
        Assert.Equal(32, spec.MemoryMiB);
    }

    [Theory]
    [InlineData("program = \"p\"\n", "web.toml: missing required key 'name'")]
    [InlineData("name = \"a\"\n", "web.toml: missing required key 'program'")]
    [InlineData("", "web.toml: missing required key 'name'")]
    [InlineData("name = \"a\"\nprogram = \"p\"\ncolour = \"red\"\n", "web.toml:3: unknown key 'colour'")]
    [InlineData("name = \"a\"\nprogram = \"p\"\n[disk]\nsize = 1\n", "web.toml:3: unknown table '[disk]'")]
    [InlineData("name = \"a\"\nprogram = \"p\"\n[[env]]\nA = \"1\"\n", "web.toml:3: 'env' must be a table of strings")]
    [InlineData("name = 1\nprogram = \"p\"\n", "web.toml:1: 'name' must be a string, not an integer")]
    [InlineData("name = \"a b\"\nprogram = \"p\"\n", "web.toml:1: invalid domain name 'a b'")]
    [InlineData("name = \"\"\nprogram = \"p\"\n", "web.toml:1: a domain name cannot be empty")]
    [InlineData("name = \"a\"\nprogram = \"\"\n", "web.toml:2: 'program' cannot be empty")]
    [InlineData("name = \"a\"\nprogram = [\"p\"]\n", "web.toml:2: 'program' must be a string, not an array")]
    [InlineData("name = \"a\"\nprogram = \"p\"\nmemory = \"64\"\n", "web.toml:3: 'memory' must be an integer (MiB), not a string")]
    [InlineData("name = \"a\"\nprogram = \"p\"\nmemory = 64.5\n", "web.toml:3: 'memory' must be an integer (MiB), not a float")]
    [InlineData("name = \"a\"\nprogram = \"p\"\nmemory = 1\n", "web.toml:3: 'memory' must be between 4 and 65536 MiB, not 1")]
    [InlineData("name = \"a\"\nprogram = \"p\"\nmemory = 100000\n", "web.toml:3: 'memory' must be between 4 and 65536 MiB")]
    [InlineData("name = \"a\"\nprogram = \"p\"\nargs = \"-v\"\n", "web.toml:3: 'args' must be an array of strings, not a string")]
    [InlineData("name = \"a\"\nprogram = \"p\"\nargs = [\"-v\", 2]\n", "web.toml:3: 'args' must be an array of strings, but item 2 is an integer")]
    [InlineData("name = \"a\"\nprogram = \"p\"\nfiles = [true]\n", "web.toml:3: 'files' must be an array of strings, but item 1 is a boolean")]
    [InlineData("name = \"a\"\nprogram = \"p\"\nconsole_log = 3\n", "web.toml:3: 'console_log' must be a string, not an integer")]
    [InlineData("name = \"a\"\nprogram = \"p\"\nenv = \"A=1\"\n", "web.toml:3: 'env' must be a table of strings, not a string")]
    [InlineData("name = \"a\"\nprogram = \"p\"\n[env]\nA = 1\n", "web.toml:4: 'env.A' must be a string, not an integer")]
    [InlineData("name = \"a\"\nprogram = \"p\"\n[env]\nA.B = \"x\"\n", "web.toml:4: 'env.A.B': environment variable names cannot contain '.'")]
    [InlineData("name = \"a\"\nprogram = \"p\"\n[env]\n\"A=B\" = \"x\"\n", "web.toml:4: 'env.A=B' is not a valid environment variable name")]
    [InlineData("name = \"a\"\nname = \"b\"\nprogram = \"p\"\n", "web.toml:2: duplicate key 'name' (first set on line 1)")]
    [InlineData("name = \"a\"\nprogram = \"p\"\n[env]\nA = \"1\"\nA = \"2\"\n", "web.toml:5: duplicate key 'env.A' (first set on line 4)")]
    [InlineData("name = \"a\"\nprogram = \"p\"\n[env]\nA = \"1\"\n[env]\nB = \"2\"\n", "web.toml:5: table [env] is defined twice")]
    [InlineData("name = \"a\"\nprogram = \"p\"\nenv = { A = \"1\" }\n[env]\nB = \"2\"\n", "web.toml:4: duplicate key 'env'")]
    [InlineData("name = \"a\"\nprogram = \"p\"\nname.x = \"y\"\n", "web.toml:3: 'name' cannot be a table")]
    [InlineData("name = \"a\"\nprogram = \"p\"\nmemory = \n", "web.toml:3:10: ")]
    [InlineData("name = \"a\nprogram = \"p\"\n", "web.toml:1:")]
    [InlineData("name = \"a\"\nprogram = \"p\"\nargs = [\"x\",\n", "web.toml:")]
    [InlineData("[env\n", "web.toml:1:")]
    [InlineData("name = \"a\"\nprogram = \"p\\u0000\"\n", "web.toml:2: 'program' cannot contain a NUL character")]
    [InlineData("name = \"a\"\nprogram = \"p\"\nplatform = \"xen\"\n", "web.toml:3: 'platform' must be \"auto\", \"kvm\" or \"ptrace\", not \"xen\"")]
    [InlineData("name = \"a\"\nprogram = \"p\"\nplatform = \"KVM\"\n", "web.toml:3: 'platform' must be \"auto\", \"kvm\" or \"ptrace\", not \"KVM\"")]
    [InlineData("name = \"a\"\nprogram = \"p\"\nplatform = 1\n", "web.toml:3: 'platform' must be a string, not an integer")]
    [InlineData("name = \"a\"\nprogram = \"p\"\nplatform = \"kvm\"\nplatform = \"ptrace\"\n", "web.toml:4: duplicate key 'platform' (first set on line 3)")]
    public void Bad_config_is_one_line_naming_the_file_line_and_key(string toml, string expectedStart)
    {
        var message = Error(toml);
        Assert.StartsWith(expectedStart, message);
        Assert.DoesNotContain('\n', message);
    }

    [Fact]
    public void Missing_file_is_a_config_error()
    {
        var message = Assert.Throws<ConfigException>(() => ConfigLoader.Load("/nonexistent/remus/web.toml")).Message;
        Assert.Equal("cannot read config '/nonexistent/remus/web.toml': no such file or directory", message);
    }

    [Fact]
    public void Load_anchors_relative_paths_at_the_file_folder()
    {
        var dir = Directory.CreateTempSubdirectory("remus-config-");
        try
        {
            var path = Path.Combine(dir.FullName, "d.toml");
            File.WriteAllText(path, "name = \"d\"\nprogram = \"./prog\"\nconsole_log = \"out.log\"\n");
            var config = ConfigLoader.Load(path);
            Assert.Equal(Path.Combine(dir.FullName, "prog"), config.Program);
            Assert.Equal("./prog", config.Argv0);
            Assert.Equal(Path.Combine(dir.FullName, "out.log"), config.ConsoleLog);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData("web", true)]
    [InlineData("a.b-c_D9", true)]
    [InlineData("42", true)]
    [InlineData("web--incoming", true)]
    [InlineData("", false)]
    [InlineData("a b", false)]
    [InlineData("a/b", false)]
    [InlineData("día", false)]
    public void Domain_names(string name, bool valid) => Assert.Equal(valid, DomainName.Problem(name) is null);

    [Fact]
    public void Domain_names_are_at_most_64_characters()
    {
        Assert.Null(DomainName.Problem(new string('a', 64)));
        Assert.NotNull(DomainName.Problem(new string('a', 65)));
    }
}
