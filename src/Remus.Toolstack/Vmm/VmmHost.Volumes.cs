using Remus.Sandbox;
using Remus.Sandbox.Volumes;
using Remus.Toolstack.Config;

namespace Remus.Toolstack.Vmm;

/// <summary>
/// The VMM's side of volumes (docs/storage.md): a domain that arrives here (restore, migration, Remus failover) was
/// built on staging copies (<see cref="VolumeStaging"/>); they become its volumes when the domain becomes this host's,
/// and a domain that never does leaves none behind.
/// </summary>
public sealed partial class VmmHost
{
    /// <summary>How long a receiver waits for a VMM on this host (the source or primary, exiting) to let go of a volume.</summary>
    internal static readonly TimeSpan VolumePatience = TimeSpan.FromSeconds(15);

    /// <summary>
    /// The arrived domain's staging copies become its volumes (moved into place at their host paths; content found
    /// there is kept aside, which is said through <paramref name="say"/> and the log). Throws a one-line
    /// <see cref="RemusException"/> when they cannot be.
    /// </summary>
    internal void CommitVolumes(TimeSpan patience, Action<string>? say)
    {
        if (_domain.Volumes is not { } volumes) return;
        try
        {
            volumes.Commit(patience, message =>
            {
                _log.Write(message);
                say?.Invoke(message);
            });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or SandboxException or InvalidOperationException
                                      or TimeoutException)
        {
            _log.Write($"cannot put the volumes in place: {e.Message}");
            throw new RemusException($"cannot put the domain's volumes in place: {e.Message}");
        }
        foreach (var v in _config.Volumes) _log.Write($"volume {v.Target}: {v.Source}");
    }

    /// <summary>
    /// Removes the staging copies of a domain that arrives no more (a failed restore or migration, a backup that
    /// ends without a takeover): what it received is never kept. Best effort; tmpfs volumes have none.
    /// </summary>
    internal static void RemoveStaging(IEnumerable<VolumeSpec> volumes, Action<string>? log = null)
    {
        foreach (var v in volumes)
        {
            if (v.Tmpfs || v.HostPath.Length == 0) continue;
            var staging = VolumeStaging.StagingPath(v.HostPath);
            try
            {
                if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                log?.Invoke($"cannot remove the staging copy {staging}: {e.Message}");
            }
        }
    }

    private List<VolumeInfo>? VolumesInfo()
    {
        var specs = _config.VolumeSpecs;
        if (specs.Count == 0) return null;
        return specs.Select(v => new VolumeInfo
        {
            Target = v.GuestPath,
            HostPath = v.Tmpfs ? null : v.HostPath,
            Tmpfs = v.Tmpfs,
        }).ToList();
    }
}
