using Remus.Sandbox.Volumes;
using Xunit;

namespace Remus.Tests.Volumes;

/// <summary>
/// A receiver never writes outside its copy's root, whatever the body says: non-canonical paths are refused whole
/// before anything is applied, and a path through a symlink in the copy (absolute, relative, pointing out) fails.
/// </summary>
public sealed class VolumeApplierConfinementTests : IDisposable
{
    private readonly TempDir _tmp = new();
    private readonly string _root, _outside;
    private readonly TestVolumeRoots _roots;
    private readonly VolumeReplica _receiver;

    public VolumeApplierConfinementTests()
    {
        _root = _tmp.Sub("copy");
        _outside = _tmp.Sub("outside");
        Directory.CreateDirectory(_root);
        Directory.CreateDirectory(_outside);
        File.WriteAllText(Path.Combine(_outside, "victim"), "precious");
        Directory.CreateDirectory(Path.Combine(_outside, "vdir"));
        File.CreateSymbolicLink(Path.Combine(_root, "abs"), _outside);
        File.CreateSymbolicLink(Path.Combine(_root, "rel"), "../outside");
        File.CreateSymbolicLink(Path.Combine(_root, "file"), Path.Combine(_outside, "victim"));
        Directory.CreateDirectory(Path.Combine(_root, "real"));
        _roots = new TestVolumeRoots(_root);
        _receiver = new VolumeReplica(_roots);
    }

    public void Dispose()
    {
        _roots.Dispose();
        _tmp.Dispose();
    }

    private string Outside() => VolumeTree.Describe(_outside) + string.Join(",", Directory.EnumerateFileSystemEntries(_tmp.Path).Order());

    private static byte[] Body(Action<VolumeBatchWriter> write)
    {
        var w = new VolumeBatchWriter();
        write(w);
        byte[]? body = null;
        w.Drain(b => body = b.ToArray());
        return body!;
    }

    public static IEnumerable<object[]> Escapes()
    {
        foreach (var via in new[] { "abs", "rel" })
        {
            yield return [via, "create"];
            yield return [via, "write"];
            yield return [via, "truncate"];
            yield return [via, "fallocate"];
            yield return [via, "mkdir"];
            yield return [via, "rmdir"];
            yield return [via, "unlink"];
            yield return [via, "rename-from"];
            yield return [via, "rename-to"];
            yield return [via, "link-from"];
            yield return [via, "link-to"];
            yield return [via, "symlink"];
            yield return [via, "chmod"];
            yield return [via, "utimes"];
            yield return [via, "file"];
            yield return [via, "dir"];
        }
    }

    [Theory]
    [MemberData(nameof(Escapes))]
    public void An_op_through_a_symlink_in_the_copy_fails_and_writes_nothing_outside(string via, string what)
    {
        string before = Outside();
        string victim = via + "/victim", vdir = via + "/vdir";
        byte[] body = Body(w =>
        {
            switch (what)
            {
                case "create": w.Create(0, via + "/new", 0x1FF); break;
                case "write": w.Write(0, victim, 0, "overwritten"u8); break;
                case "truncate": w.Truncate(0, victim, 0); break;
                case "fallocate": w.Fallocate(0, victim, 0, 1 << 20); break;
                case "mkdir": w.Mkdir(0, via + "/newdir", 0x1FF); break;
                case "rmdir": w.Rmdir(0, vdir); break;
                case "unlink": w.Unlink(0, victim); break;
                case "rename-from": w.Rename(0, victim, "stolen", 0); break;
                case "rename-to": w.Create(0, "mine", 0x1A4); w.Rename(0, "mine", victim, 0); break;
                case "link-from": w.Link(0, victim, "stolen"); break;
                case "link-to": w.Create(0, "mine", 0x1A4); w.Link(0, "mine", via + "/planted"); break;
                case "symlink": w.Symlink(0, "/", via + "/planted"); break;
                case "chmod": w.Chmod(0, victim, 0xFFF); break;
                case "utimes": w.Utimes(0, victim, 0, 0); break;
                case "file": w.File(0, victim, 0x1FF, 5, 0, 0); break;
                case "dir": w.Dir(0, vdir, 0x1FF, []); break;
            }
        });
        _receiver.Validate(body);      // well-formed: only the copy's symlink makes it an escape
        Assert.Throws<IOException>(() => _receiver.Apply(body));
        Assert.Equal(before, Outside());
        Assert.Equal("precious", File.ReadAllText(Path.Combine(_outside, "victim")));
    }

    [Fact]
    public void Ops_on_a_symlink_itself_replace_the_link_not_its_target()
    {
        string before = Outside();
        _receiver.Apply(Body(w =>
        {
            w.File(0, "file", 0x1A4, 3, 0, 0);      // "file" is a symlink to the outside victim
            w.Write(0, "file", 0, "new"u8);
            w.Absent(0, "abs");
            w.Dir(0, "rel", 0x1ED, []);
            w.Absent(0, "abs/victim");              // through what is no longer there: nothing to do
        }));
        Assert.Equal(before, Outside());
        Assert.Equal("new", File.ReadAllText(Path.Combine(_root, "file")));
        Assert.Null(new FileInfo(Path.Combine(_root, "file")).LinkTarget);
        Assert.False(Path.Exists(Path.Combine(_root, "abs")));
        Assert.True(Directory.Exists(Path.Combine(_root, "rel")) && new DirectoryInfo(Path.Combine(_root, "rel")).LinkTarget is null);
    }

    [Fact]
    public void A_write_to_a_symlink_as_the_last_component_fails()
    {
        Assert.Throws<IOException>(() => _receiver.Apply(Body(w => w.Write(0, "file", 0, "x"u8))));
        Assert.Throws<IOException>(() => _receiver.Apply(Body(w => w.Truncate(0, "file", 0))));
        Assert.Equal("precious", File.ReadAllText(Path.Combine(_outside, "victim")));
    }

    [Theory]
    [InlineData("../outside/victim")]
    [InlineData("../x")]
    [InlineData("/etc/x")]
    [InlineData("real/../../x")]
    public void A_hostile_path_refuses_the_whole_body_before_anything_is_applied(string path)
    {
        string before = Outside();
        byte[] body = Body(w =>
        {
            w.Create(0, "first", 0x1A4);         // valid, and first: must not be applied either
            w.Create(0, path, 0x1A4);
            w.Write(0, path, 0, "x"u8);
        });
        Assert.Throws<InvalidDataException>(() => _receiver.Validate(body));
        Assert.Throws<InvalidDataException>(() => _receiver.Apply(body));
        Assert.False(File.Exists(Path.Combine(_root, "first")));
        Assert.Equal(before, Outside());
    }

    [Fact]
    public void Reset_empties_the_copy_without_following_its_symlinks()
    {
        string before = Outside();
        _receiver.Apply(Body(w => w.Reset(0)));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_root));
        Assert.Equal(before, Outside());
    }

    [Fact]
    public void Strict_an_op_on_a_path_the_copy_lacks_fails()
    {
        Assert.Throws<IOException>(() => _receiver.Apply(Body(w => w.Write(0, "real/missing", 0, "x"u8))));
        Assert.Throws<IOException>(() => _receiver.Apply(Body(w => w.Unlink(0, "real/missing"))));
        Assert.Throws<IOException>(() => _receiver.Apply(Body(w => w.Create(0, "nodir/f", 0x1A4))));
        Assert.Throws<IOException>(() => _receiver.Apply(Body(w => w.Mkdir(0, "real", 0x1ED))));
    }
}
