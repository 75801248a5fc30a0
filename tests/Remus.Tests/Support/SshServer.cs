using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Remus.Tests.Support;

/// <summary>
/// A real OpenSSH server on a loopback port, with host and user keys made for the test, so migration can go
/// through `ssh host remus migrate-receive` exactly as a user's would. The remote `remus` is a wrapper that runs
/// this build; the remote session's REMUS_RUN_DIR is the "target host's" run directory.
/// </summary>
public sealed class SshServer : IDisposable
{
    private readonly Process _sshd;
    private readonly string _dir;

    public int Port { get; }
    public string TargetRunDir { get; }

    /// <summary>The `-s` value for remus migrate/protect: an ssh command line that logs in with the test's key.</summary>
    public string SshCommand => $"ssh -p {Port} -i {_dir}/user_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR";

    public string Host => $"{Environment.UserName}@127.0.0.1";

    public static string? Sshd => File.Exists("/usr/sbin/sshd") ? "/usr/sbin/sshd" : ProcessRunner.FindOnPath("sshd");

    public SshServer(string targetRunDir)
    {
        TargetRunDir = targetRunDir;
        _dir = Directory.CreateTempSubdirectory("remus-sshd-").FullName;
        string sshd = Sshd ?? throw new InvalidOperationException("sshd is not installed (apt-get install openssh-server)");
        Keygen("host_key");
        Keygen("user_key");
        File.Copy(Path.Combine(_dir, "user_key.pub"), Path.Combine(_dir, "authorized_keys"));
        string bin = Path.Combine(_dir, "bin");
        Directory.CreateDirectory(bin);
        string wrapper = Path.Combine(bin, "remus");
        File.WriteAllText(wrapper, $"#!/bin/sh\nexec \"{RemusCli.DotnetPath}\" \"{RemusCli.DllPath}\" \"$@\"\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Directory.CreateDirectory("/run/sshd");

        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        Port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        string config = Path.Combine(_dir, "sshd_config");
        File.WriteAllText(config, $"""
            Port {Port}
            ListenAddress 127.0.0.1
            HostKey {_dir}/host_key
            PidFile {_dir}/sshd.pid
            AuthorizedKeysFile {_dir}/authorized_keys
            StrictModes no
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            SetEnv PATH={bin}:/usr/local/bin:/usr/bin:/bin REMUS_RUN_DIR={targetRunDir} DOTNET_CLI_HOME={_dir}
            LogLevel ERROR
            """);
        _sshd = Process.Start(new ProcessStartInfo(sshd) { ArgumentList = { "-D", "-e", "-f", config }, RedirectStandardError = true, UseShellExecute = false })!;
        _sshd.ErrorDataReceived += (_, _) => { };
        _sshd.BeginErrorReadLine();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            try
            {
                using var c = new TcpClient();
                c.Connect(IPAddress.Loopback, Port);
                break;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !_sshd.HasExited)
            {
                Thread.Sleep(50);
            }
        }
    }

    private void Keygen(string name)
    {
        var r = ProcessRunner.Run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", Path.Combine(_dir, name)], null, TimeSpan.FromSeconds(20));
        if (r.ExitCode != 0) throw new InvalidOperationException($"ssh-keygen failed: {r.StderrText}");
    }

    public void Dispose()
    {
        try { if (!_sshd.HasExited) _sshd.Kill(); } catch (InvalidOperationException) { }
        _sshd.WaitForExit(5000);
        _sshd.Dispose();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
