using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Toolstack;
using Remus.Toolstack.Config;

namespace Remus.Cli.Commands;

/// <summary><c>remus run [--memory MB] [--platform auto|kvm|ptrace] [--env K=V]... [--file PATH]... [--net tap=NAME,address=A/N,...] [--volume SRC:TARGET]... [--no-tmpfs] &lt;program&gt; [args...]</c></summary>
internal static class RunCommand
{
    /// <summary>What `remus run` itself exits with when it fails (as env, nohup and docker run do): not a status the
    /// program is likely to use.</summary>
    public const int RunFailureStatus = 125;

    private static readonly string[] ValueOptions = ["--memory", "-m", "--platform", "--env", "-e", "--file", "-f", "--net", "--volume"];

    public static Command Build()
    {
        var memory = new Option<int>("--memory", "-m")
        {
            Description = $"Guest RAM in MiB ({DomainSpec.MinMemoryMiB}-{DomainSpec.MaxMemoryMiB}).",
            HelpName = "MiB",
            DefaultValueFactory = _ => 128,
            CustomParser = ParseMemory,
        };
        var platform = new Option<PlatformKind>("--platform")
        {
            Description = "How the vCPU runs: auto (KVM if it passes its self-test and is cheaper, else ptrace), kvm or ptrace. " +
                          $"Default: ${PlatformSelection.EnvironmentVariable}, else auto.",
            HelpName = "auto|kvm|ptrace",
            DefaultValueFactory = _ => PlatformKind.Auto,
            CustomParser = ParsePlatform,
        };
        var env = new Option<string[]>("--env", "-e")
        {
            Description = "Set an environment variable for the program (repeatable). The program sees only these.",
            HelpName = "NAME=VALUE",
        };
        env.Validators.Add(result =>
        {
            foreach (var pair in result.GetValueOrDefault<string[]>() ?? [])
                if (pair.IndexOf('=') <= 0) result.AddError($"--env wants NAME=VALUE, not '{pair}'");
        });
        var file = new Option<string[]>("--file", "-f")
        {
            Description = "A host file or folder the program may read (repeatable). Nothing else is visible.",
            HelpName = "PATH",
        };
        var net = new Option<string>("--net")
        {
            Description = "Give the domain a network interface: a tap device the VMM creates, and the domain's IPv4 address. " +
                          "Keys as in a config's [network] table: tap=NAME (up to 15 characters), address=A.B.C.D/N, and optionally " +
                          "gateway=G (default route), host=H/N (address of the host side of the tap), bridge=BR (attach the tap to " +
                          "this existing bridge instead), netns=NS (create the tap in this existing network namespace), " +
                          "mac=xx:xx:xx:xx:xx:xx (default derived from the program's name). Needs CAP_NET_ADMIN.",
            HelpName = "tap=NAME,address=A/N[,gateway=G][,host=H/N][,bridge=BR][,netns=NS][,mac=M]",
        };
        var volume = new Option<string[]>("--volume")
        {
            Description = "A writable host directory the program sees at an absolute guest path (repeatable; the directory is " +
                          "created if missing). Replicated with the domain under Remus; see docs/storage.md.",
            HelpName = "SRC:TARGET",
        };
        volume.Validators.Add(result =>
        {
            foreach (var text in result.GetValueOrDefault<string[]>() ?? [])
                if (VolumeConfig.ParseOption(text, out var problem) is null) result.AddError(problem!);
        });
        var noTmpfs = new Option<bool>("--no-tmpfs") { Description = "No /tmp (by default the program has an empty /tmp in memory)." };
        var program = new Argument<string>("program") { Description = "The static Linux x86-64 program (ELF) to run." };
        program.Validators.Add(result =>
        {
            var value = result.GetValueOrDefault<string>();
            if (value is { Length: > 1 } && value[0] == '-') result.AddError($"unknown option '{value}'");
        });
        var args = new Argument<string[]>("args")
        {
            Description = "Arguments for the program; everything after <program> is the program's, options included.",
            Arity = ArgumentArity.ZeroOrMore,
        };

        var command = new Command("run",
            "Run a program in a domain in the foreground: its stdout and stderr are ours, it reads our stdin, and remus " +
            "exits with its exit status (128+n when a signal n ended it; 125 when remus itself fails).")
        {
            memory, platform, env, file, net, volume, noTmpfs, program, args,
        };
        command.SetAction(parse => Cli.Guard(() =>
        {
            var programPath = parse.GetValue(program)!;
            var files = (parse.GetValue(file) ?? []).Select(Path.GetFullPath).ToList();
            foreach (var path in files)
                if (!File.Exists(path) && !Directory.Exists(path))
                    throw new RemusException($"--file '{path}': no such file or directory");
            Remus.Sandbox.Net.NetworkSpec? network = null;
            if (parse.GetValue(net) is { } netText)
                network = (NetworkConfig.ParseOption(netText, Path.GetFileName(programPath), out var problem)
                           ?? throw new RemusException(problem!)).ToSpec();
            var volumes = (parse.GetValue(volume) ?? []).Select(v => VolumeConfig.ParseOption(v, out _)!).ToList();
            bool tmpfs = !parse.GetValue(noTmpfs);
            foreach (var (index, problem) in VolumeConfig.Problems(volumes, tmpfs))
                throw new RemusException($"--volume {volumes[index].Source}:{volumes[index].Target}: {problem}");
            VolumeConfig.PrepareSources(volumes);
            var spec = new DomainSpec
            {
                ProgramPath = Path.GetFullPath(programPath),
                Argv0 = programPath,
                Args = parse.GetValue(args) ?? [],
                Env = (parse.GetValue(env) ?? []).Select(SplitPair).ToList(),
                Files = files,
                MemoryMiB = parse.GetValue(memory),
                Platform = parse.GetValue(platform),
                Network = network,
                Volumes = VolumeConfig.ToSpecs(volumes, tmpfs),
            };
            return ForegroundRunner.Run(spec);
        }, RunFailureStatus));
        return command;
    }

    private static KeyValuePair<string, string> SplitPair(string pair)
    {
        var equals = pair.IndexOf('=');
        return new(pair[..equals], pair[(equals + 1)..]);
    }

    private static PlatformKind ParsePlatform(ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        if (PlatformSelection.Parse(text) is { } kind && text == PlatformSelection.NameOf(kind)) return kind;
        result.AddError($"--platform wants auto, kvm or ptrace, not '{text}'");
        return PlatformKind.Auto;
    }

    private static int ParseMemory(ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var mib)
            || mib < DomainSpec.MinMemoryMiB || mib > DomainSpec.MaxMemoryMiB)
        {
            result.AddError($"--memory wants a whole number of MiB between {DomainSpec.MinMemoryMiB} and {DomainSpec.MaxMemoryMiB}, not '{text}'");
            return 0;
        }
        return mib;
    }

    /// <summary>
    /// Makes everything from the program on the program's: inserts "--" before the first argument of `run` that is
    /// not one of run's options (or an option's value), so that `remus run prog --memory 1 -h` passes both options
    /// to prog. System.CommandLine then treats the rest as arguments.
    /// </summary>
    public static string[] SeparateProgramArguments(string[] args)
    {
        if (args.Length == 0 || args[0] != "run") return args;
        for (var i = 1; i < args.Length; i++)
        {
            var token = args[i];
            if (token == "--") return args;
            if (ValueOptions.Contains(token))
            {
                i++; // its value
                continue;
            }
            if (token.Length > 1 && token[0] == '-') continue; // --memory=64, -h, or an unknown option (an error)
            return [.. args[..i], "--", .. args[i..]];
        }
        return args;
    }
}
