using Remus.Fuzz;
using Remus.Fuzz.Targets;

// remus-fuzz TARGET              run under afl-fuzz (SharpFuzz fork server), input on stdin / @@
// remus-fuzz TARGET --replay DIR  run every file of DIR in process and report (no AFL needed)
// remus-fuzz --seeds DIR          write the seed corpora under DIR/TARGET/
// remus-fuzz --list               the targets
if (args.Length == 1 && args[0] == "--list")
{
    foreach (var t in FuzzTargets.All) Console.WriteLine($"{t.Name,-12} {t.What}");
    return 0;
}
if (args.Length == 2 && args[0] == "--seeds")
{
    Seeds.WriteAll(args[1]);
    return 0;
}
if (args.Length >= 1 && FuzzTargets.Find(args[0]) is { } target)
{
    if (args.Length == 3 && args[1] == "--replay") return Replay.Run(target, args[2]);
    if (args.Length == 1)
    {
        SharpFuzz.Fuzzer.OutOfProcess.Run(stream =>
        {
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            target.Run(copy.ToArray());
        });
        return 0;
    }
}
Console.Error.WriteLine("usage: Remus.Fuzz TARGET [--replay DIR] | --seeds DIR | --list");
Console.Error.WriteLine("targets: " + string.Join(", ", FuzzTargets.All.Select(t => t.Name)));
return 2;
