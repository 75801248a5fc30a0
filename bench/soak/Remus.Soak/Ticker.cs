using System.Diagnostics;

namespace Remus.Soak;

/// <summary>tests/guests/nonce_ticker.c built with gcc -static into a folder of this run.</summary>
internal static class Ticker
{
    public static string Build()
    {
        string root = Root();
        string dir = Directory.CreateTempSubdirectory("remus-soak-guest-").FullName;
        string output = Path.Combine(dir, "nonce_ticker");
        var psi = new ProcessStartInfo("gcc") { UseShellExecute = false, RedirectStandardError = true };
        foreach (var a in new[] { "-O2", "-static", "-o", output, Path.Combine(root, "tests", "guests", "nonce_ticker.c") }) psi.ArgumentList.Add(a);
        using var gcc = Process.Start(psi)!;
        string errors = gcc.StandardError.ReadToEnd();
        gcc.WaitForExit();
        if (gcc.ExitCode != 0) throw new InvalidOperationException($"gcc failed on nonce_ticker.c: {errors}");
        return output;
    }

    /// <summary>The checkout this program was built in, or else the one the current directory is in (a copy of the build elsewhere).</summary>
    private static string Root()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "Remus.sln"))) return d.FullName;
        throw new InvalidOperationException($"cannot find the repository root (Remus.sln) above {AppContext.BaseDirectory} or the current directory");
    }
}
