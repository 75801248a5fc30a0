using System.Net;
using System.Net.Sockets;

namespace Remus.Soak.Harness;

/// <summary>Where the real `remus` runs from, and loopback ports for its channels.</summary>
internal static class Loopback
{
    /// <summary>A loopback port nobody listens on right now (the kernel's pick, released at once).</summary>
    public static int FreePort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    /// <summary>remus.dll next to this program (the project reference copies it), else $REMUS_DLL.</summary>
    public static string FindRemusDll()
    {
        string here = Path.Combine(AppContext.BaseDirectory, "remus.dll");
        if (File.Exists(here) && File.Exists(Path.Combine(AppContext.BaseDirectory, "remus.runtimeconfig.json"))) return here;
        return Environment.GetEnvironmentVariable("REMUS_DLL") is { } dll && File.Exists(dll)
            ? dll
            : throw new InvalidOperationException($"remus.dll is not in {AppContext.BaseDirectory}; build the project or set REMUS_DLL");
    }
}
