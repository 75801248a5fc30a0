using System.Text.RegularExpressions;

namespace Remus.Toolstack.Config;

/// <summary>Rules for domain names: 1-64 characters of [A-Za-z0-9_.-]. A name that is all digits is allowed but
/// a numeric argument on the command line is looked up as a domain id first (as xl does).</summary>
public static partial class DomainName
{
    public const int MaxLength = 64;

    [GeneratedRegex("^[A-Za-z0-9_.-]+$")]
    private static partial Regex Pattern();

    /// <summary>Null when valid, else why not (one line, without the name's key).</summary>
    public static string? Problem(string name)
    {
        if (name.Length == 0) return "a domain name cannot be empty";
        if (name.Length > MaxLength) return $"a domain name is at most {MaxLength} characters";
        if (!Pattern().IsMatch(name)) return $"invalid domain name '{name}': use only letters, digits, '_', '.' and '-'";
        return null;
    }

    public static void Validate(string name)
    {
        if (Problem(name) is { } problem) throw new RemusException(problem);
    }
}
