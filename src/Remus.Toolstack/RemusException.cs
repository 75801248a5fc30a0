namespace Remus.Toolstack;

/// <summary>
/// A problem the user can fix (bad config, unknown domain, name in use, dead VMM...). The CLI prints its message as
/// one line ("remus: &lt;message&gt;") and exits non-zero, never with a stack trace.
/// </summary>
public class RemusException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A domain name or id that names no running domain.</summary>
public sealed class UnknownDomainException(string domain)
    : RemusException($"no domain named '{domain}' (see 'remus list')");
