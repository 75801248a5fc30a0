using System.CommandLine;
using System.Globalization;
using Remus.Toolstack;
using Remus.Toolstack.Witness;
using Spectre.Console;

namespace Remus.Cli.Commands;

/// <summary><c>remus list [--json] [domain...]</c></summary>
internal static class ListCommand
{
    public static Command Build()
    {
        var json = new Option<bool>("--json") { Description = "Print a JSON array of objects (name, id, pid, state, memory, time, program, created; volumes: target, host_path, tmpfs; remus: protection figures)." };
        var cluster = new Option<bool>("--cluster") { Description = "List every protected domain the witness knows (with --witness): name, active host, pid, role, epoch, lease TTL and time left (s)." };
        var witness = new Option<string?>("--witness") { Description = "The etcd witness for --cluster (client URLs separated by commas).", HelpName = "URL[,URL...]" };
        var domains = new Argument<string[]>("domain") { Description = "Only these domains (names or ids).", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("list", "List the running domains: name, id, VMM pid, memory (MiB), state (running, paused, exited), CPU time.")
        {
            json, cluster, witness, domains,
        };
        command.SetAction(parse => Cli.Guard(() =>
        {
            if (parse.GetValue(cluster))
            {
                var urls = WitnessUrls.Parse(parse.GetValue(witness)) ?? throw new RemusException("list --cluster needs --witness URL[,URL...]");
                using var etcd = new EtcdWitness(urls);
                List<WitnessDomain> rows;
                try { rows = etcd.ListDomains(); }
                catch (Remus.Checkpoint.Witness.WitnessException e) { throw new RemusException(e.Message); }
                if (parse.GetValue(json)) StdStreams.Out.WriteLine(WitnessDomain.ToJson(rows));
                else PrintCluster(rows);
                return 0;
            }
            var manager = Cli.Manager();
            var wanted = parse.GetValue(domains) ?? [];
            IReadOnlyList<DomainInfo> list = wanted.Length == 0 ? manager.List() : wanted.Select(manager.Get).ToList();
            if (parse.GetValue(json)) StdStreams.Out.WriteLine(DomainInfo.ToJson(list));
            else Print(list);
            return 0;
        }));
        return command;
    }

    /// <summary>Whether the domain is protected and where to, as the table's Remus column shows it.</summary>
    internal static string Protection(RemusDomainInfo? r) => r switch
    {
        null => "-",
        { Fenced: true } => $"FENCED: another copy took over ({r.Lost ?? "unknown"}); never runs here again",
        { Protected: true, Net: { } n } => $"protected -> {r.Backup} ({r.Epochs} epochs; net {n.FramesReleased} frames out, " +
                                            $"{n.FramesHeld} held, +{n.LatencyP50Ms.ToString("0.0", CultureInfo.InvariantCulture)} ms p50)",
        { Protected: true } => $"protected -> {r.Backup} ({r.Epochs} epochs)",
        _ => $"UNPROTECTED (backup {r.Backup} lost: {r.Lost ?? "unknown"})",
    };

    /// <summary>The domain's volumes as the table's Volumes column shows them: TARGET=HOST PATH, the tmpfs left out.</summary>
    internal static string Volumes(IReadOnlyList<VolumeInfo>? volumes)
    {
        var shown = (volumes ?? []).Where(v => !v.Tmpfs).Select(v => $"{v.Target}={v.HostPath}").ToList();
        return shown.Count == 0 ? "-" : string.Join(", ", shown);
    }

    private static void PrintCluster(IReadOnlyList<WitnessDomain> rows)
    {
        var table = new Table().Border(TableBorder.None).HideRowSeparators();
        table.AddColumn(new TableColumn("Name").PadLeft(0));
        table.AddColumn(new TableColumn("Active host"));
        table.AddColumn(new TableColumn("PID").RightAligned());
        table.AddColumn(new TableColumn("Role"));
        table.AddColumn(new TableColumn("Epoch").RightAligned());
        table.AddColumn(new TableColumn("Lease(s)").RightAligned());
        foreach (var r in rows)
            table.AddRow(
                Markup.Escape(r.Name),
                Markup.Escape(r.Host ?? "?"),
                r.Pid?.ToString(CultureInfo.InvariantCulture) ?? "?",
                Markup.Escape(r.Role ?? "?"),
                r.Epoch?.ToString(CultureInfo.InvariantCulture) ?? "?",
                r.LeaseSecondsLeft is { } left ? $"{left}/{r.LeaseTtlSeconds}" : "-");
        Plain().Write(table);
    }

    /// <summary>A console on our stdout without colours or escape codes, at a fixed size.</summary>
    private static IAnsiConsole Plain()
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(StdStreams.Out),
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        // Fixed sizes: asking the terminal would make .NET initialize it (escape codes).
        console.Profile.Width = 160;
        console.Profile.Height = 50;
        return console;
    }

    private static void Print(IReadOnlyList<DomainInfo> domains)
    {
        var table = new Table().Border(TableBorder.None).HideRowSeparators();
        table.AddColumn(new TableColumn("Name").PadLeft(0));
        table.AddColumn(new TableColumn("ID").RightAligned());
        table.AddColumn(new TableColumn("PID").RightAligned());
        table.AddColumn(new TableColumn("Mem").RightAligned());
        table.AddColumn(new TableColumn("State"));
        table.AddColumn(new TableColumn("Time(s)").RightAligned());
        bool remus = domains.Any(d => d.Remus != null);
        bool volumes = domains.Any(d => d.Volumes?.Any(v => !v.Tmpfs) == true);
        if (volumes) table.AddColumn(new TableColumn("Volumes"));
        if (remus) table.AddColumn(new TableColumn("Remus"));
        foreach (var d in domains)
        {
            var cells = new List<string>
            {
                Markup.Escape(d.Name),
                d.Id.ToString(CultureInfo.InvariantCulture),
                d.Pid.ToString(CultureInfo.InvariantCulture),
                d.Memory.ToString(CultureInfo.InvariantCulture),
                d.State.ToString().ToLowerInvariant(),
                d.Time.ToString("0.0", CultureInfo.InvariantCulture),
            };
            if (volumes) cells.Add(Markup.Escape(Volumes(d.Volumes)));
            if (remus) cells.Add(Markup.Escape(Protection(d.Remus)));
            table.AddRow(cells.ToArray());
        }
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(StdStreams.Out),
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        // Fixed sizes: asking the terminal would make .NET initialize it (escape codes).
        console.Profile.Width = 160;
        console.Profile.Height = 50;
        console.Write(table);
    }
}
