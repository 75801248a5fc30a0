namespace Remus.Soak.Rounds;

/// <summary>How a round ended.</summary>
internal enum Verdict
{
    /// <summary>The continuity rule held and every party did what the design says.</summary>
    Passed,
    /// <summary>A check failed, or something hung: a finding, with the seed to replay it.</summary>
    Failed,
    /// <summary>The fault could not be placed (the program ended first, or the setup failed before any fault): not a verdict on Remus.</summary>
    Missed,
}

/// <summary>One round's verdict, what happened, and how long it took.</summary>
internal sealed record RoundResult(RoundPlan Plan, Verdict Verdict, string Outcome, string? Failure, double Seconds);
