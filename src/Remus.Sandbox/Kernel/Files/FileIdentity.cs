namespace Remus.Sandbox.Kernel.Files;

/// <summary>The host file behind an open file (st_dev, st_ino): what record locks and flock attach to.</summary>
internal readonly record struct FileIdentity(ulong Device, ulong Inode);
