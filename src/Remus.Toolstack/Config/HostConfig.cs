using Remus.Checkpoint.Stream;
using Remus.Sandbox;
using Remus.Toolstack.Security;
using Tomlyn.Syntax;
using static Remus.Toolstack.Config.TomlSyntax;

namespace Remus.Toolstack.Config;

/// <summary>
/// The host-wide configuration (TOML; <see cref="DefaultPath"/>, or REMUS_HOST_CONFIG): the TLS or PSK settings every
/// TCP channel of this host uses unless the command line says otherwise, and the receive policy. See docs/security.md.
/// <code>
/// [tls]
/// cert = "/etc/remus/host.crt"
/// key = "/etc/remus/host.key"
/// ca = "/etc/remus/ca.crt"
/// # or: [psk]  file = "/etc/remus/psk"
/// [receive]
/// allow_paths = ["/srv/remus", "/var/log/remus"]
/// max_memory = 8192        # MiB
/// max_vcpus = 64
/// </code>
/// [tls] needs all three of cert, key and ca; [tls] and [psk] cannot both be present. The files of [tls] and [psk]
/// are relative to the config file's folder; <c>allow_paths</c> must be absolute (no ".."). Unknown tables and keys,
/// and a key given twice, are refused. A missing file is an empty configuration; a present one with a problem is a
/// <see cref="ConfigException"/> ("file:line: message").
/// </summary>
public sealed record HostConfig
{
    public const string DefaultPath = "/etc/remus/host.toml";
    public const string PathVariable = "REMUS_HOST_CONFIG";

    /// <summary>The host's channel protection (null: none configured).</summary>
    public ChannelSecurity? Security { get; init; }
    public ReceivePolicy Policy { get; init; } = new();

    /// <summary>
    /// Whether [receive] sets <c>allow_paths</c> (even to an empty list, which allows no host path). A stdin receiver
    /// with no --allow-path and no allow_paths has no path restriction (<see cref="ReceivePolicy.Unrestricted"/>).
    /// Added to the issue-13 contract.
    /// </summary>
    public bool HasAllowPaths { get; init; }

    /// <summary>The file this came from (whether or not it exists). Added to the issue-13 contract.</summary>
    public string FilePath { get; init; } = DefaultPath;

    private static readonly string[] Tables = ["tls", "psk", "receive"];
    private static readonly string[] TlsKeys = ["cert", "key", "ca"];
    private static readonly string[] PskKeys = ["file"];
    private static readonly string[] ReceiveKeys = ["allow_paths", "max_memory", "max_vcpus"];

    /// <summary>Loads REMUS_HOST_CONFIG if set, else <see cref="DefaultPath"/>; empty when the file does not exist.</summary>
    public static HostConfig Load() =>
        Load(Environment.GetEnvironmentVariable(PathVariable) is { Length: > 0 } path ? path : DefaultPath);

    /// <summary>Loads the host config at <paramref name="path"/>; empty when the file does not exist. Added to the issue-13 contract.</summary>
    public static HostConfig Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return Empty(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"cannot read host config '{path}': {ConfigLoader.Describe(e)}");
        }
        var folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) ?? "/";
        return Parse(text, path, folder);
    }

    private static HostConfig Empty(string path) => new() { FilePath = path, Policy = new ReceivePolicy { HostConfigPath = path } };

    /// <summary>Parses host config text; <paramref name="baseDirectory"/> anchors the relative file paths.</summary>
    public static HostConfig Parse(string text, string sourceName, string baseDirectory)
    {
        var doc = TomlSyntax.Parse(text, sourceName);
        return new Reader(sourceName, baseDirectory).Read(doc);
    }

    private sealed class Reader(string source, string baseDirectory)
    {
        private readonly Dictionary<string, int> _seen = new(StringComparer.Ordinal);
        private readonly Dictionary<string, (string Value, int Line)> _files = new(StringComparer.Ordinal);
        private List<string>? _allowPaths;
        private int? _maxMemory, _maxVcpus;

        public HostConfig Read(DocumentSyntax doc)
        {
            foreach (var kv in doc.KeyValues)
            {
                var key = KeyParts(kv.Key);
                if (key.Length == 1 && Tables.Contains(key[0]))
                    throw Error(Line(kv), $"write '{key[0]}' as a table: [{key[0]}] and its keys below it");
                if (key.Length == 1)
                    throw Error(Line(kv), $"unknown key '{key[0]}' (the host config has the tables [tls], [psk] and [receive])");
                Entry(key[0], key[1..], kv.Value, Line(kv));
            }
            foreach (var table in doc.Tables)
            {
                var name = KeyParts(table.Name);
                int line = Line(table);
                string shown = string.Join('.', name);
                if (!Tables.Contains(name[0]))
                    throw Error(line, $"unknown table '[{shown}]' (the host config has the tables [tls], [psk] and [receive])");
                if (table is TableArraySyntax || name.Length > 1)
                    throw Error(line, $"'{name[0]}' must be one table, like [{name[0]}]");
                Claim($"[{name[0]}]", line, $"table [{name[0]}] is defined twice");
                foreach (var kv in table.Items) Entry(name[0], KeyParts(kv.Key), kv.Value, Line(kv));
            }

            ChannelSecurity? security = null;
            bool tls = _seen.ContainsKey("[tls]") || TlsKeys.Any(k => _files.ContainsKey("tls." + k));
            bool psk = _seen.ContainsKey("[psk]") || _files.ContainsKey("psk.file");
            if (tls && psk)
                throw Error(_seen.GetValueOrDefault("[psk]", _files.GetValueOrDefault("psk.file").Line),
                    "[tls] and [psk] cannot both be set: choose certificates or a pre-shared key");
            if (tls)
            {
                var missing = TlsKeys.Where(k => !_files.ContainsKey("tls." + k)).ToList();
                if (missing.Count > 0)
                    throw Error(_seen.GetValueOrDefault("[tls]", _files.Values.Select(v => v.Line).DefaultIfEmpty(1).Min()),
                        $"[tls] needs cert, key and ca together (missing: {string.Join(", ", missing)})");
                security = new ChannelSecurity
                {
                    Mode = ChannelMode.Tls,
                    CertFile = _files["tls.cert"].Value,
                    KeyFile = _files["tls.key"].Value,
                    CaFile = _files["tls.ca"].Value,
                };
            }
            else if (psk)
            {
                if (!_files.TryGetValue("psk.file", out var file))
                    throw Error(_seen["[psk]"], "[psk] needs file = \"PATH\" (the file holding the pre-shared key)");
                security = new ChannelSecurity { Mode = ChannelMode.Psk, PskFile = file.Value };
            }

            var defaults = new ReceivePolicy();
            return new HostConfig
            {
                FilePath = source,
                Security = security,
                HasAllowPaths = _allowPaths is not null,
                Policy = new ReceivePolicy
                {
                    AllowedPaths = _allowPaths ?? [],
                    MaxMemoryMiB = _maxMemory ?? defaults.MaxMemoryMiB,
                    MaxVcpus = _maxVcpus ?? defaults.MaxVcpus,
                    HostConfigPath = source,
                },
            };
        }

        private void Entry(string table, string[] key, ValueSyntax? value, int line)
        {
            var name = string.Join('.', key);
            var known = table switch { "tls" => TlsKeys, "psk" => PskKeys, "receive" => ReceiveKeys, _ => [] };
            if (!Tables.Contains(table))
                throw Error(line, $"unknown table '{table}' (the host config has the tables [tls], [psk] and [receive])");
            if (key.Length != 1 || !known.Contains(name))
                throw Error(line, $"unknown key '{name}' in [{table}] (known keys: {string.Join(", ", known)})");
            Claim($"{table}.{name}", line, $"duplicate key '{name}' in [{table}] (first set on line {_seen.GetValueOrDefault($"{table}.{name}")})");
            switch (table, name)
            {
                case ("tls", _) or ("psk", _):
                    string file = String($"{table}.{name}", value, line);
                    if (file.Length == 0) throw Error(line, $"'{name}' in [{table}] cannot be empty");
                    _files[$"{table}.{name}"] = (System.IO.Path.GetFullPath(System.IO.Path.Combine(baseDirectory, file)), line);
                    break;
                case ("receive", "allow_paths"):
                    _allowPaths = [];
                    if (value is not ArraySyntax array)
                        throw Error(line, $"'allow_paths' must be an array of absolute paths, not {TypeOf(value)}");
                    foreach (var item in array.Items)
                    {
                        if (item.Value is not StringValueSyntax s)
                            throw Error(line, $"'allow_paths' must be an array of strings, but item {_allowPaths.Count + 1} is {TypeOf(item.Value)}");
                        string path = s.Value ?? "";
                        if (path.Contains('\0')) throw Error(line, "'allow_paths' cannot contain a NUL character");
                        if (!path.StartsWith('/'))
                            throw Error(line, $"'allow_paths' must hold absolute paths, not \"{path}\"");
                        if (path.Split('/').Contains(".."))
                            throw Error(line, $"'allow_paths' cannot contain \"..\" (\"{path}\"): write the path it means");
                        _allowPaths.Add(System.IO.Path.GetFullPath(path));
                    }
                    break;
                case ("receive", "max_memory"):
                    _maxMemory = Integer(name, value, line, DomainSpec.MinMemoryMiB, DomainSpec.MaxMemoryMiB, " MiB");
                    break;
                case ("receive", "max_vcpus"):
                    _maxVcpus = Integer(name, value, line, 1, StreamFormat.MaxVcpuStatesPerEpoch, "");
                    break;
            }
        }

        private int Integer(string key, ValueSyntax? value, int line, int min, int max, string unit)
        {
            if (value is not IntegerValueSyntax integer)
                throw Error(line, $"'{key}' must be an integer{(unit.Length > 0 ? $" ({unit.Trim()})" : "")}, not {TypeOf(value)}");
            if (integer.Value < min || integer.Value > max)
                throw Error(line, $"'{key}' must be between {min} and {max}{unit}, not {integer.Value}");
            return (int)integer.Value;
        }

        private void Claim(string key, int line, string message)
        {
            if (!_seen.TryAdd(key, line)) throw Error(line, message);
        }

        private string String(string key, ValueSyntax? value, int line) => value is StringValueSyntax s
            ? (s.Value ?? "").Contains('\0') ? throw Error(line, $"'{key}' cannot contain a NUL character") : s.Value ?? ""
            : throw Error(line, $"'{key}' must be a string, not {TypeOf(value)}");

        private ConfigException Error(int line, string message) => new($"{source}:{line}: {message}");

    }
}
