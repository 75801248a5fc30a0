using System.Text;
using Remus.Fuzz.Targets;
using Remus.Toolstack;
using Remus.Toolstack.Config;
using Remus.Toolstack.Vmm;
using Xunit;

namespace Remus.Tests.Hardening;

/// <summary>
/// What the coverage-guided fuzzing found (issue 11 item 1; docs/reliability.md "Coverage-guided fuzzing"), each with
/// its input inline: refused now with the component's own error, and the harness that found it passes.
/// </summary>
public sealed class FuzzRegressionTests
{
    private static FuzzOutcome Run(string target, string input) =>
        FuzzCorpusTests.Run(FuzzTargets.Find(target)!, Encoding.UTF8.GetBytes(input), "regression input");

    // Finding 1 (config-json, FuzzCorpusTests' splice mutation): a stream's domain config without "Files" (or "Args",
    // "Env") deserialized with that list null, and ReceivePolicy.Check threw NullReferenceException on the receiver.
    [Fact]
    public void A_stream_config_without_its_lists_has_empty_ones()
    {
        var config = IncomingVmm.ParseConfig("""{"Name":"m","Program":"/nonexistent-remus-fuzz/p"}"""u8.ToArray());
        Assert.Empty(config.Args);
        Assert.Empty(config.Env);
        Assert.Empty(config.Files);
        Assert.Empty(config.Volumes);
        Assert.Equal(FuzzOutcome.Accepted, Run("config-json",
            """{"Name":"m","MemoryMiB":128,"Program":"/nonexistent-remus-fuzz/p","Arglatform":"ptrace","Volumes":[],"Tmpfs":false}"""));
    }

    [Theory]
    [InlineData("""{"Name":"m"}""", "missing required properties")]
    [InlineData("""{"Name":"m","Program":null}""", "it has no program")]
    [InlineData("""{"Name":null,"Program":"/p"}""", "it has no name")]
    [InlineData("""{"Name":"../../etc","Program":"/p"}""", "invalid domain name")]
    [InlineData("""{"Name":"m","Program":"/p","Files":[null]}""", "an entry of files is null")]
    [InlineData("""{"Name":"m","Program":"/p","Args":["a",null]}""", "an argument is null")]
    [InlineData("""{"Name":"m","Program":"/p","Env":[{"Key":null,"Value":"v"}]}""", "an environment variable")]
    [InlineData("""{"Name":"m","Program":"/p","Volumes":[null]}""", "a volume has no source or target")]
    [InlineData("""{"Name":"m","Program":"/p","Volumes":[{"Source":null,"Target":"/d"}]}""", "a volume has no source or target")]
    [InlineData("""{"Name":"m","Program":"/p","Network":{"Tap":"t0","Address":null,"Mac":"02:00:00:00:00:01"}}""", "[network] lacks tap, address or mac")]
    [InlineData("""{"Name":"m","Program":"/p","Witness":[null]}""", "an entry of witness is null")]
    public void A_stream_config_with_nulls_is_refused_with_a_clear_error(string json, string expected)
    {
        var e = Assert.Throws<RemusException>(() => IncomingVmm.ParseConfig(Encoding.UTF8.GetBytes(json)));
        Assert.StartsWith("the stream's domain configuration is invalid: ", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.Equal(FuzzOutcome.Refused, Run("config-json", json));
    }

    // Finding 2 (domain-toml, AFL++ 69 crashes in 120 s, all this one): a basic string cut by the end of the file right
    // after a '\' made Tomlyn 2.10.2 throw ArgumentOutOfRangeException (Char.ConvertFromUtf32 of its end-of-file
    // marker, while wording its own error) out of ConfigLoader.Parse and HostConfig.Parse.
    [Theory]
    [InlineData("name = \"\\", 1, 10)]
    [InlineData("name = \"web\"\nprogram = \"a\\", 2, 14)]
    [InlineData("name = \"\"\"\\", 1, 12)]
    public void A_config_that_ends_after_a_backslash_in_a_string_is_refused(string toml, int line, int column)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(toml, "d.toml", "/"));
        Assert.Equal($"d.toml:{line}:{column}: the file ends inside a string, after a '\\' that escapes nothing", e.Message);
        var host = Assert.Throws<ConfigException>(() => HostConfig.Parse("[receive]\nallow_paths = [\"\\", "h.toml", "/"));
        Assert.StartsWith("h.toml:2:", host.Message);
        Assert.Equal(FuzzOutcome.Refused, Run("domain-toml", toml));
        Assert.Equal(FuzzOutcome.Refused, Run("host-toml", "[psk]\nfile = \"\\"));
    }

    // Finding 3 (host-toml, AFL++ 3 of its 87 crashes in 120 s; the other 84 were finding 2): arrays or inline tables
    // nested deeper than 64 made Tomlyn throw its TomlException (not a diagnostic) out of both TOML readers.
    [Theory]
    [InlineData(70, false)]
    [InlineData(70, true)]
    public void A_config_nested_too_deep_is_refused(int depth, bool inlineTables)
    {
        string value = inlineTables
            ? string.Concat(Enumerable.Repeat("{a=", depth)) + "1" + new string('}', depth)
            : new string('[', depth) + new string(']', depth);
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse($"name = \"x\"\nargs = {value}\n", "d.toml", "/"));
        Assert.EndsWith("arrays and tables are nested too deep (at most 64 levels)", e.Message);
        Assert.StartsWith("d.toml", e.Message);
        Assert.Throws<ConfigException>(() => HostConfig.Parse($"[receive]\nallow_paths = {value}\n", "h.toml", "/"));
        Assert.Equal(FuzzOutcome.Refused, Run("host-toml", $"[receive]\nmax_vcpus = {value}\n"));
    }
}
