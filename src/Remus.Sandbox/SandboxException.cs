namespace Remus.Sandbox;

/// <summary>A problem with the user's input or the host that is reported as one clear line (no stack trace).</summary>
public class SandboxException(string message, Exception? inner = null) : Exception(message, inner);
