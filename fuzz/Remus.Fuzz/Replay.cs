using Remus.Fuzz.Targets;

namespace Remus.Fuzz;

/// <summary>Runs a directory of inputs (a corpus, AFL's queue or crashes) through a target in process.</summary>
internal static class Replay
{
    public static int Run(FuzzTarget target, string directory)
    {
        int accepted = 0, refused = 0, failed = 0;
        bool verbose = Environment.GetEnvironmentVariable("REMUS_FUZZ_VERBOSE") == "1";
        foreach (var file in Directory.EnumerateFiles(directory).Order(StringComparer.Ordinal))
        {
            if (Path.GetFileName(file) == "README.txt") continue;
            try
            {
                if (target.Run(File.ReadAllBytes(file), out var refusal) == FuzzOutcome.Accepted) accepted++;
                else refused++;
                if (verbose) Console.WriteLine($"{Path.GetFileName(file)}: {(refusal is null ? "accepted" : $"refused: {refusal.GetType().Name}: {refusal.Message}")}");
            }
            catch (Exception e)
            {
                failed++;
                Console.WriteLine($"FINDING {file}: {e.GetType().Name}: {e.Message}");
                Console.WriteLine(e.StackTrace);
            }
        }
        Console.WriteLine($"{target.Name}: {accepted + refused + failed} inputs, {accepted} accepted, {refused} refused, {failed} findings");
        return failed == 0 ? 0 : 1;
    }
}
