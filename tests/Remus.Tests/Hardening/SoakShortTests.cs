using Remus.Sandbox.Platform;
using Remus.Soak.Rounds;
using Remus.Tests.Checkpoint;
using Remus.Tests.EndToEnd;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Hardening;

/// <summary>
/// The soak harness (bench/soak, issue 11 item 3) in short: two rounds per fault kind per platform, through the very
/// round code of `remus-soak` (<see cref="SoakRound"/>): the real CLI, a primary protected to a backup
/// (`migrate-receive -r`) through the harness's TCP relay, one fault (the primary SIGKILLed; SIGSTOPped past the
/// timeout, then killed; one direction of its channel cut; the backup SIGKILLed), then the continuity rule on the
/// combined console and what each party should have done. Each kind gets one round during the initial
/// synchronisation and one a few ms after a checkpoint went through (while the backup applies it); the seeds are
/// found by the plan's own draw, so a failure names the seed that `remus-soak --replay SEED` repeats.
/// </summary>
[Collection(EndToEndCollection.Name)]
public sealed class SoakShortTests
{
    [SkippableTheory]
    [MemberData(nameof(Rounds))]
    public void A_soak_round_keeps_the_continuity_rule(string kind, PlatformKind platform, string moment, int seed)
    {
        Platforms.Require(platform);
        var plan = RoundPlan.From(seed);
        Assert.Equal(kind, RoundPlan.KindName(plan.Kind));
        Assert.Equal(moment, plan.Moment.ToString());
        // The backup's default --timeout (2 s): on a loaded machine a shorter one makes the primary give up on its
        // backup before any fault (a late first ack, as designed), and the round has nothing to test: it is tried
        // again, and skipped with the reason if that keeps happening.
        var setup = new SoakRound.Setup(RemusCli.DllPath, NonceTicker.Program, TimeoutMs: 2000);
        var result = SoakRound.Run(plan, setup);
        for (int retry = 0; retry < 2 && result.Verdict == Verdict.Missed; retry++) result = SoakRound.Run(plan, setup);
        Skip.If(result.Verdict == Verdict.Missed, $"seed {seed}: the fault could not be placed three times: {result.Outcome}");
        Assert.True(result.Verdict == Verdict.Passed,
            $"seed {seed} ({plan.Describe()}): {result.Verdict}, {result.Outcome}\nreplay: remus-soak --replay {seed} --verbose\n{result.Failure}");
    }

    /// <summary>Per platform and kind: the first seed (of the kind's and platform's residue mod 8) whose moment is the sync, and the first whose is an apply.</summary>
    public static TheoryData<string, PlatformKind, string, int> Rounds()
    {
        var data = new TheoryData<string, PlatformKind, string, int>();
        for (int p = 0; p < RoundPlan.Platforms.Length; p++)
            for (int k = 0; k < RoundPlan.Kinds.Length; k++)
                foreach (var moment in new[] { Moment.Sync, Moment.Apply })
                {
                    int seed = Enumerable.Range(1, 1000).Select(i => i * 8 + p * 4 + k).First(s => RoundPlan.From(s).Moment == moment);
                    data.Add(RoundPlan.KindName(RoundPlan.Kinds[k]), RoundPlan.Platforms[p], moment.ToString(), seed);
                }
        return data;
    }
}
