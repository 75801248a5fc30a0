namespace Remus.Toolstack.Config;

/// <summary>A config file that cannot be used: the message names the file, the line and the key.</summary>
public sealed class ConfigException(string message) : RemusException(message);
