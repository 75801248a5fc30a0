using Tomlyn.Syntax;

namespace Remus.Toolstack.Config;

/// <summary>What both TOML readers (<see cref="ConfigLoader"/>, <see cref="HostConfig"/>) need from Tomlyn's syntax tree: a
/// node's line, a key's dotted parts, and a value's type for messages.</summary>
internal static class TomlSyntax
{
    internal static int Line(SyntaxNode node) => node.Span.Start.Line + 1;

    internal static string[] KeyParts(KeySyntax? key)
    {
        if (key is null) return [""];
        var parts = new List<string> { Part(key.Key) };
        foreach (var dotted in key.DotKeys) parts.Add(Part(dotted.Key));
        return [.. parts];
    }

    internal static string Part(BareKeyOrStringValueSyntax? key) => key switch
    {
        BareKeySyntax bare => bare.Key?.Text ?? "",
        StringValueSyntax quoted => quoted.Value ?? "",
        _ => "",
    };

    internal static string TypeOf(ValueSyntax? value) => value switch
    {
        StringValueSyntax => "a string",
        IntegerValueSyntax => "an integer",
        FloatValueSyntax => "a float",
        BooleanValueSyntax => "a boolean",
        DateTimeValueSyntax => "a date/time",
        ArraySyntax => "an array",
        InlineTableSyntax => "a table",
        _ => "nothing",
    };
}
