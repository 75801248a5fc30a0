using Remus.Simulation;
using Xunit;
using Xunit.Abstractions;

namespace Remus.Tests.Checkpoint.Simulation;

/// <summary>
/// The Remus fault-injection harness in CI (issue 15): seeds of every scenario but a two-way partition of live hosts
/// (<see cref="ScenarioSets.Ci"/>, <see cref="ScenarioSets.NeedsWitness"/>), each run checked against the guarantee;
/// and the proof that the harness catches a broken output commit. `remus-bench simulate` runs thousands of seeds of every scenario.
/// </summary>
public class FaultInjectionTests(ITestOutputHelper output)
{
    private const int SeedsPerBlock = 80;

    public static TheoryData<int> Blocks => [0, 1, 2, 3];

    [Theory]
    [MemberData(nameof(Blocks))]
    public void The_guarantee_holds_under_every_fault_but_a_two_way_partition(int block)
    {
        var seeds = Enumerable.Range(block * SeedsPerBlock + 1, SeedsPerBlock);
        var scenarios = seeds.Select(s => Scenario.FromSeed(s, ScenarioSets.Ci, SimProfile.Ci)).ToList();
        // A combination that partitions both directions needs the witness (issue 12): not run here, counted.
        var partitions = scenarios.Count(s => !ScenarioSets.IsCovered(s));
        var results = SimulationBatch.Run(scenarios.Where(ScenarioSets.IsCovered));
        output.WriteLine(SimulationBatch.Table(results));
        if (partitions > 0) output.WriteLine($"{partitions} two-fault seeds were two-way partitions (need the witness, issue 12): not run");
        // A failed run in which the machine froze the process past half the timeout did not test the protocol (the
        // lease assumes no such stall, ProtocolRegressionTests.Holds): it is run once more, and must pass then.
        var failed = results.Where(r => !r.Passed)
            .Select(r => r.MachineStalled ? SimulationRun.Execute(r.Scenario) : r)
            .Where(r => !r.Passed).ToList();
        Assert.True(failed.Count == 0,
            $"{failed.Count} seeds broke the guarantee:\n" + string.Concat(failed.Take(3).Select(r => r.Report(maxChunks: 150, maxEvents: 150))));
    }

    /// <summary>
    /// The harness must fail when output commit is broken: the same failovers (the primary dies while sending an
    /// epoch) with the guest writing straight to the world, or with each epoch's output released when sealed instead
    /// of when acked. The backup then re-runs output the world already saw: a rollback the checker must see.
    /// </summary>
    [Theory]
    [InlineData(Mutation.GuestBypassesOutputCommit)]
    [InlineData(Mutation.ReleaseBeforeAck)]
    public void The_harness_catches_output_released_before_the_backup_has_it(Mutation mutation)
    {
        var scenarios = Enumerable.Range(1, 24).Select(s => Scenario.Make(ScenarioKind.PrimaryKilledMidSend, s, SimProfile.Ci));
        var results = SimulationBatch.Run(scenarios, mutation);
        output.WriteLine(SimulationBatch.Table(results));
        int tookOver = results.Count(r => r.TookOver), caught = results.Count(r => !r.Passed);
        output.WriteLine($"{mutation}: {caught} of {results.Count} seeds show a violation ({tookOver} failovers)");
        Assert.True(caught >= 3 && caught * 2 >= tookOver, $"{mutation}: only {caught} of {tookOver} failovers show a violation");
        Assert.All(results.Where(r => !r.Passed), r => Assert.Contains(r.Violations, v => v.StartsWith("rollback", StringComparison.Ordinal)));
    }
}
