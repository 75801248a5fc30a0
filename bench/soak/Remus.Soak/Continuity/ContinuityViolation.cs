namespace Remus.Soak.Continuity;

/// <summary>What the outside world saw breaks the output guarantee (DESIGN.md §5), or is not the ticker's output at all.</summary>
internal sealed class ContinuityViolation(string message) : Exception(message);
