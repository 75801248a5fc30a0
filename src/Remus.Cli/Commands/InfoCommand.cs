using System.CommandLine;
using System.Globalization;
using Remus.Toolstack;
using Remus.Toolstack.Registry;
using Spectre.Console;

namespace Remus.Cli.Commands;

/// <summary><c>remus info [--json]</c>: the host and its vCPU platforms, as <c>xl info</c>.</summary>
internal static class InfoCommand
{
    public static Command Build()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object (host, release, cpu, platforms with self-test and syscall_us, auto, default, dirty_log, run_directory, remus_version)." };
        var command = new Command("info",
            "Show the host (kernel, CPU), each vCPU platform (KVM, ptrace) with its self-test result and measured system " +
            "call round trip, what 'auto' picks and why, the dirty log, the run directory and the version. Runs both " +
            "self-tests (a few ms each).")
        {
            json,
        };
        command.SetAction(parse => Cli.Guard(() =>
        {
            var info = HostInfo.Gather(RunDirectory.FromEnvironment());
            if (parse.GetValue(json)) StdStreams.Out.WriteLine(info.ToJson());
            else Print(info);
            return 0;
        }));
        return command;
    }

    private static void Print(HostInfo info)
    {
        var o = StdStreams.Out;
        void Line(string key, string value) => o.WriteLine($"{key,-22} : {value}");
        Line("host", info.Host);
        Line("release", info.Release);
        Line("version", info.KernelVersion);
        Line("machine", info.Machine);
        Line("cpu", info.Cpu);
        Line("nr_cpus", info.Cpus.ToString(CultureInfo.InvariantCulture));
        Line("total_memory", $"{info.TotalMemoryMiB} MiB");
        Line("platform_auto", $"{info.Auto.Platform} ({info.Auto.Reason})");
        if (info.RemusPlatform is { } env)
            Line("REMUS_PLATFORM", info.Default.Platform is { } p ? $"{env}: {p} ({info.Default.Reason})" : $"{env}: {info.Default.Reason}");
        Line("dirty_log", info.DirtyLog ?? "none");
        Line("run_directory", info.RunDirectory);
        Line("remus_version", info.Version);
        o.WriteLine();

        var table = new Table().Border(TableBorder.None).HideRowSeparators();
        table.AddColumn(new TableColumn("Platform").PadLeft(0));
        table.AddColumn(new TableColumn("Self-test"));
        table.AddColumn(new TableColumn("Syscall").RightAligned());
        table.AddColumn(new TableColumn("Test took").RightAligned());
        table.AddColumn(new TableColumn("AVX"));
        table.AddColumn(new TableColumn("Dirty log"));
        foreach (var p in info.Platforms)
        {
            table.AddRow(
                Markup.Escape(p.Name),
                Markup.Escape(p.SelfTest + (p.Problem is { } why ? $": {why}" : "")),
                p.SyscallMicros is { } us ? us.ToString(us < 10 ? "0.0" : "0", CultureInfo.InvariantCulture) + " µs" : "-",
                p.SelfTest == "not run" ? "-" : p.SelfTestMs.ToString("0.0", CultureInfo.InvariantCulture) + " ms",
                p.SelfTest == "passed" ? (p.Avx ? "checked" : "not offered") : "-",
                Markup.Escape(p.DirtyLog ?? "-"));
        }
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(o),
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
