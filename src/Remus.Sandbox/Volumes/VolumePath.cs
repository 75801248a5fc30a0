using System.Text.Unicode;

namespace Remus.Sandbox.Volumes;

/// <summary>
/// Canonical volume paths as the journal reports them and a VOLUME_OPS body carries them: relative to the volume root,
/// components separated by one '/', none empty, "." or "..", no NUL, valid UTF-8; "" is the root itself.
/// </summary>
internal static class VolumePath
{
    /// <summary>True when <paramref name="utf8"/> is a canonical path ("" only when <paramref name="allowRoot"/>).</summary>
    public static bool IsCanonical(ReadOnlySpan<byte> utf8, bool allowRoot)
    {
        if (utf8.Length == 0) return allowRoot;
        if (utf8.Length > VolumeOpsFormat.MaxPathBytes || !Utf8.IsValid(utf8)) return false;
        while (true)
        {
            int slash = utf8.IndexOf((byte)'/');
            var part = slash < 0 ? utf8 : utf8[..slash];
            if (!IsName(part)) return false;
            if (slash < 0) return true;
            utf8 = utf8[(slash + 1)..];
        }
    }

    /// <summary>A single component: 1-255 bytes, not "." or "..", no '/' or NUL.</summary>
    public static bool IsName(ReadOnlySpan<byte> utf8) =>
        utf8.Length is > 0 and <= VolumeOpsFormat.MaxNameBytes
        && !(utf8.Length == 1 && utf8[0] == '.') && !(utf8.Length == 2 && utf8[0] == '.' && utf8[1] == '.')
        && utf8.IndexOfAny((byte)'/', (byte)0) < 0;

    /// <summary>"a/b/c" -> ("a/b", "c"); "c" -> ("", "c").</summary>
    public static (string Parent, string Name) Split(string path)
    {
        int slash = path.LastIndexOf('/');
        return slash < 0 ? ("", path) : (path[..slash], path[(slash + 1)..]);
    }

    public static string Join(string parent, string name) => parent.Length == 0 ? name : parent + "/" + name;

    /// <summary>True when <paramref name="path"/> is <paramref name="ancestor"/> or below it.</summary>
    public static bool IsAtOrBelow(string path, string ancestor) =>
        ancestor.Length == 0 || path == ancestor || (path.Length > ancestor.Length && path.StartsWith(ancestor, StringComparison.Ordinal) && path[ancestor.Length] == '/');
}
