using Remus.Fuzz.Targets;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Hardening;

/// <summary>
/// CI's short version of the coverage-guided fuzzing (issue 11 item 1; the long runs are fuzz/run.sh, see
/// docs/reliability.md): every harness of fuzz/Remus.Fuzz/Targets over its corpus (fuzz/corpus/TARGET) and a few
/// thousand deterministic mutations of it. The rule: an input is accepted or refused with the component's own
/// error; no other exception escapes.
/// </summary>
public sealed class FuzzCorpusTests
{
    private const int Mutations = 3000;

    public static TheoryData<string> Targets()
    {
        var d = new TheoryData<string>();
        foreach (var t in FuzzTargets.All) d.Add(t.Name);
        return d;
    }

    private static FuzzTarget Target(string name) => FuzzTargets.Find(name) ?? throw new ArgumentException(name);

    internal static List<byte[]> Corpus(string name)
    {
        string dir = Path.Combine(GuestBuilder.RepoRoot, "fuzz", "corpus", name);
        return [.. Directory.GetFiles(dir).Order(StringComparer.Ordinal).Select(File.ReadAllBytes)];
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Every_corpus_input_is_accepted_or_refused(string name)
    {
        var target = Target(name);
        var corpus = Corpus(name);
        Assert.NotEmpty(corpus);
        int accepted = 0;
        foreach (var input in corpus)
            if (Run(target, input, "corpus input") == FuzzOutcome.Accepted) accepted++;
        Assert.True(accepted > 0, $"no input of fuzz/corpus/{name} is accepted: the seeds do not reach past the first check");
    }

    [Theory]
    [MemberData(nameof(Targets))]
    public void Mutated_inputs_are_refused_with_the_components_own_errors(string name)
    {
        var target = Target(name);
        var corpus = Corpus(name);
        var random = new Random(name.Aggregate(17, (h, c) => h * 31 + c)); // string.GetHashCode differs per process
        for (int i = 0; i < Mutations; i++)
        {
            var input = corpus[random.Next(corpus.Count)];
            var other = corpus[random.Next(corpus.Count)];
            var (mutated, how) = FuzzMutations.Mutate(random, input, other);
            if (random.Next(4) == 0) (mutated, how) = (FuzzMutations.Mutate(random, mutated, other).Input, how + " + more");
            Run(target, mutated, $"mutation {i} ({how})");
        }
    }

    internal static FuzzOutcome Run(FuzzTarget target, byte[] input, string what)
    {
        try
        {
            return target.Run(input);
        }
        catch (Exception e)
        {
            string hex = Convert.ToHexString(input.AsSpan(0, Math.Min(input.Length, 256)));
            Assert.Fail($"{target.Name}: {what} escaped with {e.GetType().Name}: {e.Message}\ninput ({input.Length} bytes) starts {hex}\n{e.StackTrace}");
            throw;
        }
    }
}
