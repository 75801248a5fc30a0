using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Tomlyn.Syntax;
using static Remus.Toolstack.Config.TomlSyntax;

namespace Remus.Toolstack.Config;

/// <summary>
/// Reads a domain config (TOML):
/// <code>
/// name = "web"                  # required, [A-Za-z0-9_.-]+
/// memory = 128                  # MiB
/// program = "bin/server"        # required; relative to this file's folder
/// args = ["--port", "8080"]
/// files = ["data/", "/etc/hosts"]   # host paths the program may read; relative to this file's folder
/// console_log = "web.log"       # receives stdout and stderr in order (appended); relative to this file's folder
/// platform = "auto"             # auto (default), kvm or ptrace: how the vCPU runs (REMUS_PLATFORM if auto)
/// tmpfs = true                  # /tmp in memory (default); false: no /tmp
/// max_fds = 1024                # fds open at once (RLIMIT_NOFILE; 8..1024): EMFILE past it
/// max_threads = 64              # threads at once (1..512; default: the platform's vCPUs): clone past it is EAGAIN
/// held_output_mib = 16          # output held for unacked epochs while protected (1..1024): a write past it waits
/// [env]
/// GREETING = "hello"
/// [network]                     # optional: a tap device and an IPv4 address (see NetworkConfig)
/// tap = "rmweb0"
/// address = "10.99.0.2/24"
/// [[volume]]                    # any number: a writable host directory (see VolumeConfig, docs/storage.md)
/// source = "data/shop"          # relative to this file's folder; created if missing
/// target = "/data"              # where the program sees it
/// </code>
/// Every problem is one <see cref="ConfigException"/> line "file:line: message". The walk is over Tomlyn's syntax
/// tree rather than its object model so that duplicate keys are refused and every message has a line.
/// </summary>
public static class ConfigLoader
{
    private static readonly string[] KnownKeys = ["name", "memory", "program", "args", "env", "files", "console_log", "platform", "network", "tmpfs", "volume", "witness", "max_fds", "max_threads", "held_output_mib"];

    public static DomainConfig Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"cannot read config '{path}': {Describe(e)}");
        }
        var folder = Path.GetDirectoryName(Path.GetFullPath(path)) ?? "/";
        return Parse(text, path, folder);
    }

    /// <summary>Parses config text; <paramref name="baseDirectory"/> anchors relative paths.</summary>
    public static DomainConfig Parse(string text, string sourceName, string baseDirectory)
    {
        var doc = TomlSyntax.Parse(text, sourceName);
        return new Reader(sourceName, baseDirectory).Read(doc);
    }

    internal static string Describe(Exception e) => e switch
    {
        FileNotFoundException or DirectoryNotFoundException => "no such file or directory",
        UnauthorizedAccessException => "permission denied",
        _ => e.Message,
    };

    private sealed class Reader(string source, string baseDirectory)
    {
        private readonly Dictionary<string, int> _seen = new(StringComparer.Ordinal);
        private readonly List<KeyValuePair<string, string>> _env = [];
        private string? _name, _program, _consoleLog;
        private int _memory = DomainConfig.DefaultMemoryMiB;
        private int? _maxFds, _maxThreads, _heldOutputMiB;
        private PlatformKind _platform = PlatformKind.Auto;
        private List<string> _args = [], _files = [];
        private readonly Dictionary<string, (string Value, int Line)> _network = new(StringComparer.Ordinal);
        private int? _networkLine;
        private bool _tmpfs = true;
        private List<string>? _witness;
        private readonly List<(Dictionary<string, (string Value, int Line)> Keys, int Line)> _volumes = [];

        public DomainConfig Read(DocumentSyntax doc)
        {
            foreach (var kv in doc.KeyValues)
            {
                var key = KeyParts(kv.Key);
                if (key.Length == 1) Root(key[0], kv.Value, Line(kv));
                else if (key[0] == "env") Env(key[1..], kv.Value, Line(kv), dotted: true);
                else if (key[0] == "network") throw Error(Line(kv), "write the network settings as a [network] table");
                else if (key[0] == "volume") throw Error(Line(kv), VolumeShape);
                else if (KnownKeys.Contains(key[0])) throw Error(Line(kv), $"'{key[0]}' cannot be a table");
                else throw Error(Line(kv), $"unknown key '{key[0]}' (known keys: {string.Join(", ", KnownKeys)})");
            }
            foreach (var table in doc.Tables)
            {
                var name = KeyParts(table.Name);
                var line = Line(table);
                if (name[0] == "network")
                {
                    if (table is TableArraySyntax || name.Length > 1)
                        throw Error(line, "'network' must be one table, like [network] tap = \"rmweb0\"");
                    Claim("[network]", line, "table [network] is defined twice");
                    _networkLine = line;
                    foreach (var kv in table.Items) Network(KeyParts(kv.Key), kv.Value, Line(kv));
                    continue;
                }
                if (name[0] == "volume")
                {
                    if (table is not TableArraySyntax || name.Length > 1) throw Error(line, VolumeShape);
                    var keys = new Dictionary<string, (string Value, int Line)>(StringComparer.Ordinal);
                    foreach (var kv in table.Items) Volume(keys, KeyParts(kv.Key), kv.Value, Line(kv));
                    _volumes.Add((keys, line));
                    continue;
                }
                if (name[0] != "env")
                {
                    if (KnownKeys.Contains(name[0])) throw Error(line, $"'{name[0]}' cannot be a table");
                    throw Error(line, $"unknown table '[{string.Join('.', name)}]' (the tables are [env], [network] and [[volume]])");
                }
                if (table is TableArraySyntax || name.Length > 1)
                    throw Error(line, "'env' must be a table of strings, like [env] NAME = \"value\"");
                Claim("[env]", line, "table [env] is defined twice");
                if (_seen.ContainsKey("env")) throw Error(line, "duplicate key 'env'");
                foreach (var kv in table.Items)
                    Env(KeyParts(kv.Key), kv.Value, Line(kv), dotted: false);
            }

            if (_name is null) throw new ConfigException($"{source}: missing required key 'name'");
            if (_program is null) throw new ConfigException($"{source}: missing required key 'program'");
            var network = _networkLine is { } at ? NetworkTable(at, _name) : null;
            var volumes = VolumeTables();
            return new DomainConfig
            {
                Name = _name,
                MemoryMiB = _memory,
                Program = Resolve(_program),
                Argv0 = _program,
                Args = _args,
                Env = _env,
                Files = _files.Select(Resolve).ToList(),
                ConsoleLog = _consoleLog is null ? null : Resolve(_consoleLog),
                Platform = _platform,
                Network = network,
                Volumes = volumes,
                Tmpfs = _tmpfs,
                Witness = _witness,
                MaxFds = _maxFds,
                MaxThreads = _maxThreads,
                HeldOutputMiB = _heldOutputMiB,
                SourcePath = source,
            };
        }

        private void Root(string key, ValueSyntax? value, int line)
        {
            switch (key)
            {
                case "name":
                    Claim(key, line);
                    _name = String(key, value, line);
                    if (DomainName.Problem(_name) is { } problem) throw Error(line, problem);
                    break;
                case "memory":
                    Claim(key, line);
                    if (value is not IntegerValueSyntax integer)
                        throw Error(line, $"'memory' must be an integer (MiB), not {TypeOf(value)}");
                    if (integer.Value < DomainSpec.MinMemoryMiB || integer.Value > DomainSpec.MaxMemoryMiB)
                        throw Error(line, $"'memory' must be between {DomainSpec.MinMemoryMiB} and {DomainSpec.MaxMemoryMiB} MiB, not {integer.Value}");
                    _memory = (int)integer.Value;
                    break;
                case "max_fds":
                    _maxFds = Integer(key, value, line, DomainSpec.MinMaxFds, DomainSpec.MaxMaxFds, "");
                    break;
                case "max_threads":
                    _maxThreads = Integer(key, value, line, 1, DomainSpec.MaxMaxThreads, "");
                    break;
                case "held_output_mib":
                    _heldOutputMiB = Integer(key, value, line, DomainConfig.MinHeldOutputMiB, DomainConfig.MaxHeldOutputMiB, " MiB");
                    break;
                case "program":
                    Claim(key, line);
                    _program = String(key, value, line);
                    if (_program.Length == 0) throw Error(line, "'program' cannot be empty");
                    break;
                case "args":
                    Claim(key, line);
                    _args = Strings(key, value, line);
                    break;
                case "files":
                    Claim(key, line);
                    _files = Strings(key, value, line);
                    if (_files.Any(f => f.Length == 0)) throw Error(line, "'files' cannot contain an empty path");
                    break;
                case "console_log":
                    Claim(key, line);
                    _consoleLog = String(key, value, line);
                    if (_consoleLog.Length == 0) throw Error(line, "'console_log' cannot be empty");
                    break;
                case "platform":
                    Claim(key, line);
                    string platform = String(key, value, line);
                    _platform = PlatformSelection.Parse(platform) is { } kind && platform == PlatformSelection.NameOf(kind)
                        ? kind
                        : throw Error(line, $"'platform' must be \"auto\", \"kvm\" or \"ptrace\", not \"{platform}\"");
                    break;
                case "tmpfs":
                    Claim(key, line);
                    _tmpfs = value is BooleanValueSyntax b
                        ? b.Value
                        : throw Error(line, $"'tmpfs' must be true or false, not {TypeOf(value)}");
                    break;
                case "volume":
                    throw Error(line, VolumeShape);
                case "witness":
                    Claim(key, line);
                    _witness = Strings(key, value, line);
                    if (_witness.Count == 0) throw Error(line, "'witness' needs at least one etcd URL, like [\"http://10.0.0.5:2379\"]");
                    if (_witness.FirstOrDefault(u => Remus.Toolstack.Witness.WitnessUrls.Problem(u) != null) is { } bad)
                        throw Error(line, Remus.Toolstack.Witness.WitnessUrls.Problem(bad)!);
                    break;
                case "network":
                    throw Error(line, "'network' must be a table: write [network] with tap = ... and address = ... below it");
                case "env":
                    if (value is not InlineTableSyntax inline)
                        throw Error(line, $"'env' must be a table of strings, not {TypeOf(value)}");
                    Claim(key, line);
                    if (_seen.ContainsKey("[env]") || _env.Count > 0) throw Error(line, "duplicate key 'env'");
                    foreach (var item in inline.Items)
                        if (item.KeyValue is { } kv) Env(KeyParts(kv.Key), kv.Value, Line(kv), dotted: false);
                    break;
                default:
                    throw Error(line, $"unknown key '{key}' (known keys: {string.Join(", ", KnownKeys)})");
            }
        }

        private void Network(string[] key, ValueSyntax? value, int line)
        {
            var name = string.Join('.', key);
            if (key.Length != 1 || !NetworkConfig.Keys.Contains(name))
                throw Error(line, $"unknown key '{name}' in [network] (known keys: {string.Join(", ", NetworkConfig.Keys)})");
            Claim("network." + name, line, $"duplicate key '{name}' in [network]");
            _network[name] = (String(name, value, line), line);
        }

        /// <summary>The [network] table as a whole: required keys, the default MAC, each value checked (with its line).</summary>
        private NetworkConfig NetworkTable(int tableLine, string domainName)
        {
            foreach (var required in new[] { "tap", "address" })
                if (!_network.ContainsKey(required))
                    throw Error(tableLine, $"[network] needs '{required}' (tap = \"NAME\" and address = \"A.B.C.D/N\" at least)");
            string? Get(string key) => _network.TryGetValue(key, out var v) ? v.Value : null;
            var config = new NetworkConfig
            {
                Tap = Get("tap")!,
                Address = Get("address")!,
                Gateway = Get("gateway"),
                HostAddress = Get("host_address"),
                Bridge = Get("bridge"),
                Netns = Get("netns"),
                Mac = Get("mac") ?? NetworkConfig.DefaultMac(domainName),
            };
            foreach (var (key, problem) in config.Problems())
                throw Error(_network.TryGetValue(key, out var v) ? v.Line : tableLine, problem);
            return config;
        }

        private const string VolumeShape =
            "write each volume as a [[volume]] table with source = \"HOST DIR\" and target = \"/GUEST/PATH\" below it";

        private void Volume(Dictionary<string, (string Value, int Line)> keys, string[] key, ValueSyntax? value, int line)
        {
            var name = string.Join('.', key);
            if (key.Length != 1 || !VolumeConfig.Keys.Contains(name))
                throw Error(line, $"unknown key '{name}' in [[volume]] (known keys: {string.Join(", ", VolumeConfig.Keys)})");
            if (keys.TryGetValue(name, out var first))
                throw Error(line, $"duplicate key '{name}' in [[volume]] (first set on line {first.Line})");
            keys[name] = (String(name, value, line), line);
        }

        /// <summary>The [[volume]] tables: required keys, each value checked, then the set as a whole (each with its line).</summary>
        private List<VolumeConfig> VolumeTables()
        {
            var volumes = new List<VolumeConfig>();
            var lines = new List<(int Source, int Target)>();
            foreach (var (keys, tableLine) in _volumes)
            {
                if (!keys.TryGetValue("source", out var source) || !keys.TryGetValue("target", out var target))
                    throw Error(tableLine, $"[[volume]] needs '{(keys.ContainsKey("source") ? "target" : "source")}' (source = \"HOST DIR\" and target = \"/GUEST/PATH\")");
                if (source.Value.Length == 0) throw Error(source.Line, "'source' cannot be empty");
                var normal = VolumeConfig.NormaliseTarget(target.Value, out var problem) ?? throw Error(target.Line, problem!);
                var path = VolumeConfig.HostPath(Path.Combine(baseDirectory, source.Value));
                if (File.Exists(path)) throw Error(source.Line, $"'source' {path} is a file, not a directory");
                volumes.Add(new VolumeConfig { Source = path, Target = normal });
                lines.Add((source.Line, target.Line));
            }
            foreach (var (index, problem) in VolumeConfig.Problems(volumes, _tmpfs))
                throw Error(problem.StartsWith("'source'", StringComparison.Ordinal) ? lines[index].Source : lines[index].Target, problem);
            return volumes;
        }

        private void Env(string[] key, ValueSyntax? value, int line, bool dotted)
        {
            if (dotted && _seen.ContainsKey("env")) throw Error(line, "duplicate key 'env'");
            if (key.Length != 1)
                throw Error(line, $"'env.{string.Join('.', key)}': environment variable names cannot contain '.'; quote them");
            var name = key[0];
            if (name.Length == 0 || name.Contains('=') || name.Contains('\0'))
                throw Error(line, $"'env.{name}' is not a valid environment variable name");
            Claim("env." + name, line);
            if (value is not StringValueSyntax s)
                throw Error(line, $"'env.{name}' must be a string, not {TypeOf(value)}");
            _env.Add(new(name, NoNul($"env.{name}", s.Value ?? "", line)));
        }

        private void Claim(string key, int line, string? message = null)
        {
            if (!_seen.TryAdd(key, line))
                throw Error(line, message ?? $"duplicate key '{key}' (first set on line {_seen[key]})");
        }

        private int Integer(string key, ValueSyntax? value, int line, int min, int max, string unit)
        {
            Claim(key, line);
            if (value is not IntegerValueSyntax integer)
                throw Error(line, $"'{key}' must be an integer, not {TypeOf(value)}");
            if (integer.Value < min || integer.Value > max)
                throw Error(line, $"'{key}' must be between {min} and {max}{unit}, not {integer.Value}");
            return (int)integer.Value;
        }

        private string String(string key, ValueSyntax? value, int line) => value is StringValueSyntax s
            ? NoNul(key, s.Value ?? "", line)
            : throw Error(line, $"'{key}' must be a string, not {TypeOf(value)}");

        private List<string> Strings(string key, ValueSyntax? value, int line)
        {
            if (value is not ArraySyntax array) throw Error(line, $"'{key}' must be an array of strings, not {TypeOf(value)}");
            var list = new List<string>();
            foreach (var item in array.Items)
            {
                if (item.Value is not StringValueSyntax s)
                    throw Error(line, $"'{key}' must be an array of strings, but item {list.Count + 1} is {TypeOf(item.Value)}");
                list.Add(NoNul(key, s.Value ?? "", line));
            }
            return list;
        }

        private string NoNul(string key, string value, int line) =>
            value.Contains('\0') ? throw Error(line, $"'{key}' cannot contain a NUL character") : value;

        private string Resolve(string path) => Path.GetFullPath(Path.Combine(baseDirectory, path));

        private ConfigException Error(int line, string message) => new($"{source}:{line}: {message}");

    }
}
