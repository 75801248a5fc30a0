namespace Remus.Toolstack.Witness;

/// <summary>The witness's etcd client URLs as users give them: `--witness URL[,URL...]` or the config key `witness`.</summary>
public static class WitnessUrls
{
    /// <summary>The default TTL of the witness lease (`--witness-ttl`).</summary>
    public const int DefaultTtlMs = 1000;

    /// <summary>Shortest TTL accepted: renewals every TTL/3 and a 20 ms margin must leave a useful window.</summary>
    public const int MinTtlMs = 100;

    /// <summary>"http://a:2379,http://b:2379" split and checked; null for null or empty.</summary>
    public static IReadOnlyList<string>? Parse(string? list)
    {
        if (string.IsNullOrWhiteSpace(list)) return null;
        var urls = list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var u in urls)
            if (Problem(u) is { } problem) throw new RemusException(problem);
        return urls;
    }

    /// <summary>What is wrong with <paramref name="url"/> as an etcd client URL, or null.</summary>
    public static string? Problem(string url) =>
        Uri.TryCreate(url, UriKind.Absolute, out var uri) && (uri.Scheme == "http" || uri.Scheme == "https") && uri.Port > 0 && uri.AbsolutePath == "/"
            ? null
            : $"witness URL '{url}' is not an etcd client URL like http://10.0.0.5:2379";
}
