using Tomlyn.Parsing;
using Tomlyn.Syntax;

namespace Remus.Toolstack.Config;

/// <summary>What both TOML readers (<see cref="ConfigLoader"/>, <see cref="HostConfig"/>) need from Tomlyn: the syntax
/// tree of a text or its first error, a node's line, a key's dotted parts, and a value's type for messages.</summary>
internal static class TomlSyntax
{
    /// <summary>
    /// Parses <paramref name="text"/>; its earliest error (lexer errors are listed after the parser's) is a
    /// <see cref="ConfigException"/> "source:line:column: message".
    /// </summary>
    internal static DocumentSyntax Parse(string text, string sourceName)
    {
        DocumentSyntax doc;
        try
        {
            doc = SyntaxParser.Parse(text, sourceName, false);
        }
        catch (ArgumentOutOfRangeException)
        {
            // Tomlyn 2.10.2 throws while wording its own error for a basic string cut by the end of the text right
            // after a '\' ("a\<EOF>": it formats the end-of-file marker as a character). Found by fuzz/run.sh
            // domain-toml (issue 11).
            int line = text.Count(c => c == '\n') + 1, column = text.Length - (text.LastIndexOf('\n') + 1) + 1;
            throw new ConfigException(text.EndsWith('\\')
                ? $"{sourceName}:{line}:{column}: the file ends inside a string, after a '\\' that escapes nothing"
                : $"{sourceName}: not valid TOML (the parser failed)");
        }
        catch (Tomlyn.TomlException e)
        {
            // Arrays or inline tables nested deeper than Tomlyn's limit (64) throw instead of adding a diagnostic.
            // Found by fuzz/run.sh host-toml (issue 11).
            string where = e.Line > 0 ? $"{sourceName}:{e.Line}:{e.Column}" : sourceName;
            throw new ConfigException(e.Message.StartsWith("The maximum depth", StringComparison.Ordinal)
                ? $"{where}: arrays and tables are nested too deep (at most 64 levels)"
                : $"{where}: {e.Message}");
        }
        if (doc.HasErrors)
        {
            var error = doc.Diagnostics.Where(d => d.Kind == DiagnosticMessageKind.Error)
                .OrderBy(d => d.Span.Start.Line).ThenBy(d => d.Span.Start.Column).First();
            throw new ConfigException($"{sourceName}:{error.Span.Start.Line + 1}:{error.Span.Start.Column + 1}: {error.Message}");
        }
        return doc;
    }

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
