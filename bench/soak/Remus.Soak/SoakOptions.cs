using Remus.Sandbox.Platform;
using Remus.Soak.Rounds;

namespace Remus.Soak;

/// <summary>The command line of remus-soak.</summary>
internal sealed record SoakOptions(int Rounds, int Seed, IReadOnlyList<PlatformKind> Platforms, IReadOnlyList<FaultKind> Kinds, int? Replay, bool Hog,
    int TimeoutMs, bool Verbose)
{
    public const string Help = """
        remus-soak: the Remus soak harness (issue 11 item 3). Each round runs the nonce ticker (tests/guests/nonce_ticker.c)
        in a domain through the real remus CLI, protects it (`remus protect --tcp`) to a backup (`remus migrate-receive -r
        --tcp-listen`, its own run directory) through a TCP relay of the harness, injects one fault at a seeded moment, waits
        for the end and checks what the user saw on the combined console (the primary's released output, then the backup's):
        no gap, nothing rolled back (a re-executed tick prints a different line), at most one epoch re-emitted, and that
        each party did what docs/stream-format.md §7.1 says for that fault.

        usage: remus-soak [--rounds N] [--seed S] [--platform ptrace|kvm|both] [--kinds K,K,...] [--hog] [--timeout MS] [--verbose]
               remus-soak --replay SEED [--hog] [--timeout MS] [--verbose]

          --rounds N     rounds to run (default 100), spread evenly over the kinds and platforms chosen
          --seed S       the run's seed (default: from the clock; printed); each round has a seed of its own drawn from it
          --platform P   ptrace, kvm or both (default both; a platform this machine lacks is left out, and said so)
          --kinds K,...  faults, any of (default all):
                           kill         the primary VMM SIGKILLed
                           stop         the primary VMM SIGSTOPped past the backup's timeout, then SIGKILLed while stopped
                           cut          one direction of the channel stops carrying bytes (the relay stops reading it):
                                        primary->backup (the backup times out and takes over; the primary must learn
                                        it and stop) or backup->primary (the primary gives up on its backup, releases
                                        it and continues unprotected)
                           backup-kill  the backup SIGKILLed (the primary continues, its output complete)
          --replay SEED  one round, exactly as SEED ran it in a soak (kind, platform, moment, guest all come from the seed)
          --hog          a busy process per core during the rounds (killed by pid at the end)
          --timeout MS   the backup's --timeout (default 1000)
          --verbose      print each failure's details (logs, the channel's records) as it happens, not only at the end

        Moments (from each round's seed): during the initial synchronisation (after a seeded number of stream bytes),
        0-4 ms after a checkpoint went through to the backup whole (while it verifies and applies it; big epochs: the
        guest dirties 4 or 16 MiB), or 0-1.5 s into protection. A primary lost before its backup had a complete
        checkpoint must leave the backup giving up cleanly (no domain, nothing registered) and the console a clean prefix.

        Output: a line per round, then rounds, failures by kind, wall time, and the command to replay each failure; each
        failure's details (the parties' stderr and VMM logs, the records seen on the channel) go to $TMPDIR/remus-soak-SEED.txt.
        Exit status: 0 when no round failed, 1 otherwise, 2 for a bad command line.
        """;

    public static SoakOptions Parse(string[] args)
    {
        int rounds = 100, timeout = 1000;
        int seed = Environment.TickCount & 0x7fffffff;
        int? replay = null;
        bool hog = false, verbose = false;
        var platforms = new List<PlatformKind>(RoundPlan.Platforms);
        var kinds = new List<FaultKind>(RoundPlan.Kinds);
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int Number() => int.TryParse(Value(), out int n) && n >= 0 ? n : throw new ArgumentException($"{args[i - 1]} wants a number, not '{args[i]}'");
            switch (args[i])
            {
                case "--rounds": rounds = Number(); break;
                case "--seed": seed = Number(); break;
                case "--replay": replay = Number(); break;
                case "--timeout": timeout = Number(); break;
                case "--hog": hog = true; break;
                case "--verbose": verbose = true; break;
                case "--platform":
                    string p = Value();
                    platforms = p switch
                    {
                        "both" => [.. RoundPlan.Platforms],
                        "ptrace" => [PlatformKind.Ptrace],
                        "kvm" => [PlatformKind.Kvm],
                        _ => throw new ArgumentException($"--platform wants ptrace, kvm or both, not '{p}'"),
                    };
                    break;
                case "--kinds":
                    kinds = Value().Split(',', StringSplitOptions.RemoveEmptyEntries)
                        .Select(k => RoundPlan.ParseKind(k) ?? throw new ArgumentException($"unknown kind '{k}' (kill, stop, cut, backup-kill)"))
                        .Distinct().ToList();
                    if (kinds.Count == 0) throw new ArgumentException("--kinds is empty");
                    break;
                default: throw new ArgumentException($"unknown argument '{args[i]}' (--help lists them)");
            }
        }
        if (timeout < 100) throw new ArgumentException("--timeout under 100 ms is refused by the primary");
        return new SoakOptions(rounds, seed, platforms, kinds, replay, hog, timeout, verbose);
    }
}
