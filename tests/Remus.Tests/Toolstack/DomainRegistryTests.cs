using System.Net.Sockets;
using Remus.Toolstack;
using Remus.Toolstack.Registry;
using Xunit;

namespace Remus.Tests.Toolstack;

public sealed class DomainRegistryTests : IDisposable
{
    private readonly TempRunDirectory _dir = new();
    private readonly List<Socket> _sockets = [];

    public void Dispose()
    {
        foreach (var socket in _sockets) socket.Dispose();
        _dir.Dispose();
    }

    private DomainRegistry Registry => new(_dir.Run);

    private Socket Listen(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(path));
        socket.Listen(8);
        _sockets.Add(socket);
        return socket;
    }

    private DomainRecord Register(string name) => Registry.Register(name, 64, "/bin/prog", Listen).Record;

    /// <summary>What a VMM killed with SIGKILL leaves: its socket file, with nobody listening.</summary>
    private void KillVmm(int index)
    {
        var path = ((UnixDomainSocketEndPoint)_sockets[index].LocalEndPoint!).ToString();
        _sockets[index].Dispose(); // (.NET unlinks the file of a socket it bound; a killed process does not)
        var dead = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        dead.Bind(new UnixDomainSocketEndPoint(path)); // bound, not listening: connections are refused
        _sockets.Add(dead);
    }

    [Fact]
    public void Register_allocates_an_id_writes_the_entry_and_listens()
    {
        var record = Register("web");
        Assert.Equal(1, record.Id);
        Assert.Equal("web", record.Name);
        Assert.Equal(Environment.ProcessId, record.Pid);
        Assert.True(File.Exists(_dir.Run.RecordPath(1)));
        Assert.True(File.Exists(_dir.Run.SocketPath(1)));
        Assert.Equal(["web"], Registry.LiveRecords().Select(r => r.Name));
        Assert.Equal(2, Register("db").Id);
    }

    [Fact]
    public void A_name_in_use_is_refused_and_nothing_is_left_behind()
    {
        Register("web");
        var error = Assert.Throws<RemusException>(() => Register("web"));
        Assert.Equal("domain name 'web' is already in use (domain 1)", error.Message);
        Assert.Equal(["1.json", "1.sock"], Directory.GetFileSystemEntries(_dir.Run.DomainsDirectory).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void The_name_of_a_dead_domain_can_be_taken()
    {
        var record = Register("web");
        KillVmm(0);
        Assert.Equal(record.Id + 1, Register("web").Id);
    }

    [Fact]
    public void Stale_socket_of_a_dead_vmm_is_removed_silently_by_whoever_finds_it()
    {
        Register("web");
        Register("db");
        KillVmm(0); // "web"'s VMM died
        Assert.True(File.Exists(_dir.Run.SocketPath(1)));

        var live = Registry.LiveRecords();

        Assert.Equal(["db"], live.Select(r => r.Name));
        Assert.False(File.Exists(_dir.Run.SocketPath(1)));
        Assert.False(File.Exists(_dir.Run.RecordPath(1)));
        Assert.Throws<UnknownDomainException>(() => Registry.Resolve("web"));
    }

    [Fact]
    public void An_entry_without_a_socket_is_stale()
    {
        Register("web");
        File.Delete(_dir.Run.SocketPath(1));
        Assert.Empty(Registry.LiveRecords());
        Assert.False(File.Exists(_dir.Run.RecordPath(1)));
    }

    [Fact]
    public void Sweep_removes_orphan_sockets_corrupt_entries_and_temporary_files()
    {
        Register("web");
        File.WriteAllText(Path.Combine(_dir.Run.DomainsDirectory, "7.json"), "not json");
        File.WriteAllText(Path.Combine(_dir.Run.DomainsDirectory, "8.json.123.tmp"), "{}");
        using (var orphan = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            orphan.Bind(new UnixDomainSocketEndPoint(_dir.Run.SocketPath(9)));

        using (var held = _dir.Run.Lock()) Registry.Sweep(held);

        Assert.Equal(["1.json", "1.sock"], Directory.GetFileSystemEntries(_dir.Run.DomainsDirectory).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void Resolve_by_id_or_name()
    {
        Register("web");
        Register("2");
        Assert.Equal("web", Registry.Resolve("1").Name);
        Assert.Equal("web", Registry.Resolve("web").Name);
        Assert.Equal(2, Registry.Resolve("2").Id); // an id wins over a name
        var unknown = Assert.Throws<UnknownDomainException>(() => Registry.Resolve("nope"));
        Assert.Equal("no domain named 'nope' (see 'remus list')", unknown.Message);
    }

    [Fact]
    public void Rename_updates_the_entry_and_refuses_a_name_in_use()
    {
        Register("web");
        Register("db");
        Assert.Equal("www", Registry.Rename(1, "www").Name);
        Assert.Equal("www", Registry.Resolve("1").Name);
        Assert.Equal("domain name 'db' is already in use (domain 2)", Assert.Throws<RemusException>(() => Registry.Rename(1, "db")).Message);
    }

    [Fact]
    public void Unregister_removes_entry_and_socket()
    {
        Register("web");
        Registry.Unregister(1);
        Assert.Empty(Directory.GetFileSystemEntries(_dir.Run.DomainsDirectory));
    }

    [Fact]
    public void Records_of_a_missing_run_directory_are_none()
    {
        Assert.Empty(new DomainRegistry(new RunDirectory(Path.Combine(_dir.Path, "nope"))).Records());
    }
}
