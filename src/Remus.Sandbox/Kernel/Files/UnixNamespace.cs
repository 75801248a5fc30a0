namespace Remus.Sandbox.Kernel.Files;

/// <summary>
/// The names AF_UNIX sockets bind to inside the domain: filesystem-style paths and the abstract namespace (a leading
/// NUL), both kept here and never on the host. An abstract name goes with its socket; a path name stays taken after
/// its socket closes (Linux leaves the socket file behind: a connect finds nobody, ECONNREFUSED, and a bind
/// EADDRINUSE) until the program unlinks it. In the checkpoint (SocketsSnapshot.cs).
/// </summary>
internal sealed class UnixNamespace
{
    private readonly Dictionary<string, UnixSocket?> _names = [];
    private int _autobind;

    /// <summary>Every name taken: its socket, or null for a path left behind by a closed socket.</summary>
    public IReadOnlyDictionary<string, UnixSocket?> Names => _names;

    /// <summary>
    /// The key of a bound address (the sun_path bytes as getsockname returns them). An abstract name is looked up
    /// with the socket type (Linux hashes the type in: another type's socket is not found, ECONNREFUSED); a path is
    /// one file whatever the type (EPROTOTYPE).
    /// </summary>
    public static string Key(ReadOnlySpan<byte> name, int type)
    {
        if (name.Length > 0 && name[0] != 0)
        {
            int nul = name.IndexOf((byte)0);
            if (nul >= 0) name = name[..nul];
            return System.Text.Encoding.Latin1.GetString(name);
        }
        return "\0" + (char)('0' + type) + System.Text.Encoding.Latin1.GetString(name);
    }

    public static bool IsPath(string key) => key.Length > 0 && key[0] != '\0';

    public long Bind(UnixSocket s, byte[] name)
    {
        string key = Key(name, s.Type);
        // A path is made first (EEXIST: EADDRINUSE) and only then is the socket found bound; abstract the other way.
        if (IsPath(key) && _names.ContainsKey(key)) return -Errno.EADDRINUSE;
        if (s.Name != null) return -Errno.EINVAL;
        if (_names.ContainsKey(key)) return -Errno.EADDRINUSE;
        _names[key] = s;
        s.Name = name;
        return 0;
    }

    /// <summary>bind with only sa_family: an abstract name of five hex digits (unix_autobind).</summary>
    public long AutoBind(UnixSocket s)
    {
        if (s.Name != null) return 0;
        for (int i = 0; i < 0x100000; i++)
        {
            _autobind = (_autobind + 1) & 0xFFFFF;
            byte[] name = [0, .. System.Text.Encoding.ASCII.GetBytes(_autobind.ToString("x5"))];
            if (Bind(s, name) == 0) return 0;
        }
        return -Errno.ENOSPC;
    }

    /// <summary>The socket bound to <paramref name="name"/>: -ENOENT for an unknown path, -ECONNREFUSED otherwise.</summary>
    public long Lookup(ReadOnlySpan<byte> name, int type, out UnixSocket? s)
    {
        string key = Key(name, type);
        if (_names.TryGetValue(key, out s) && s != null) return 0;
        return IsPath(key) && s == null && !_names.ContainsKey(key) ? -Errno.ENOENT : -Errno.ECONNREFUSED;
    }

    /// <summary>A closed socket's name: gone when abstract, left behind when a path.</summary>
    public void Release(UnixSocket s)
    {
        if (s.Name == null) return;
        string key = Key(s.Name, s.Type);
        if (!_names.TryGetValue(key, out var owner) || owner != s) return;
        if (IsPath(key)) _names[key] = null;
        else _names.Remove(key);
    }

    /// <summary>unlink of a path a socket is bound to; false when no socket name is there.</summary>
    public bool Unlink(string path) => IsPath(path) && _names.Remove(path);

    /// <summary>Puts a name back as a checkpoint had it.</summary>
    public void Restore(string key, UnixSocket? s) => _names[key] = s;
}
