using Remus.Checkpoint;
using Remus.Sandbox;
using Remus.Sandbox.Platform;
using Remus.Tests.Support;
using Xunit;

namespace Remus.Tests.Checkpoint;

/// <summary>
/// A program with a PROT_NONE reservation and a few scattered read-write pages in it is saved and restored: the
/// pages keep their content, and the permissions come back with the VMAs (on ptrace, whose vCPU enforces them, the
/// untouched part of the reservation still faults after the restore).
/// </summary>
public class SparseMemorySaveRestoreTests
{
    private static readonly byte[] Config = "{\"name\":\"t\"}"u8.ToArray();

    private static (string Text, int Status, int LinesBefore) SaveAndRestore(DomainSpec spec)
    {
        var console = new RecordingConsole();
        var file = new MemoryStream();
        using (var first = new RunningDomain(SandboxDomain.Create(spec, console)))
        {
            console.WaitForLines(6, TimeSpan.FromSeconds(30));
            first.Domain.Pause();
            DomainSave.Save(first.Domain, file, Config, compress: true);
        }
        int linesBefore = console.Lines;
        file.Position = 0;
        var restored = DomainSave.Restore(file, _ => SandboxDomain.CreateIncoming(spec, console));
        using var second = new RunningDomain(restored);
        int status = second.Wait(TimeSpan.FromSeconds(60));
        return (console.Text, status, linesBefore);
    }

    private static string Expected(int count, bool touch)
    {
        var s = new System.Text.StringBuilder("reserved 2048 pages, 8 made read-write\n");
        for (int i = 1; i <= count; i++) s.Append("tick ").Append(i).Append(" ok\n");
        if (touch) s.Append("touching a PROT_NONE page\n");
        return s.ToString();
    }

    [Fact]
    public void Scattered_pages_of_a_reservation_keep_their_content_across_save_and_restore()
    {
        var spec = new DomainSpec { ProgramPath = GuestBuilder.Build("vm_sparse"), Args = ["60", "10"], MemoryMiB = 32 };
        var (text, status, before) = SaveAndRestore(spec);
        Assert.True(status == 0, $"exit {status}, saved after {before} lines:\n{text}");
        Assert.True(before >= 6 && before < 61, $"saved after {before} lines");
        Assert.Equal(Expected(60, touch: false), text);
    }

    [Fact]
    public void The_reservation_still_faults_after_a_restore_on_ptrace()
    {
        var spec = new DomainSpec
        {
            ProgramPath = GuestBuilder.Build("vm_sparse"), Args = ["60", "10", "touch"], MemoryMiB = 32, Platform = PlatformKind.Ptrace,
        };
        var (text, status, before) = SaveAndRestore(spec);
        Assert.True(status == 139, $"exit {status}, saved after {before} lines:\n{text}");
        Assert.True(before >= 6 && before < 61, $"saved after {before} lines");
        Assert.Equal(Expected(60, touch: true), text);
    }
}

/// <summary>
/// Live migration of a program that, every tick, makes its pages PROT_NONE and read-write again before rewriting
/// them: the dirty log still sees the writes (on ptrace the write-protect bits the log relies on survive the stub's
/// mprotect), so the target's pages are never stale (the program checks every byte at every tick).
/// </summary>
public class ProtectionFlipMigrationTests
{
    [Theory]
    [InlineData(PlatformKind.Auto)]
    [InlineData(PlatformKind.Ptrace)]
    public async Task Writes_after_a_permission_flip_reach_the_target(PlatformKind platform)
    {
        var spec = new DomainSpec
        {
            ProgramPath = GuestBuilder.Build("vm_sparse"), Args = ["300", "10", "flip"], MemoryMiB = 32, Platform = platform,
        };
        var console = new RecordingConsole();
        var (a, b) = Channel.Pair();
        using var source = new RunningDomain(SandboxDomain.Create(spec, console));
        console.WaitForLines(5, TimeSpan.FromSeconds(20));

        SandboxDomain? arrived = null;
        var receiver = new Remus.Checkpoint.Migration.MigrationReceiver(b, b);
        var target = Task.Run(() => arrived = receiver.Receive(_ => SandboxDomain.CreateIncoming(spec, console)));
        var sender = new Remus.Checkpoint.Migration.MigrationSender(source.Domain, a, a, new Remus.Checkpoint.Migration.MigrationOptions());
        var resultTask = Task.Run(() =>
        {
            try { return sender.Migrate("{\"name\":\"f\"}"u8.ToArray()); }
            finally { if (!sender.HandedOver) a.Socket.Close(); }
        });
        await Task.WhenAny(target, resultTask).WaitAsync(TimeSpan.FromSeconds(30));
        if (resultTask.IsFaulted) await resultTask;
        await target.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.NotNull(arrived);
        using var moved = new RunningDomain(arrived!);
        receiver.ConfirmRunning();
        await resultTask.WaitAsync(TimeSpan.FromSeconds(30));
        source.Domain.Kill();

        Assert.Equal(0, moved.Wait(TimeSpan.FromSeconds(60)));
        var s = new System.Text.StringBuilder("reserved 2048 pages, 8 made read-write\n");
        for (int i = 1; i <= 300; i++) s.Append("tick ").Append(i).Append(" ok\n");
        Assert.Equal(s.ToString(), console.Text);
    }
}
