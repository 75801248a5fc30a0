/* Disk full on a volume: writes 64 KiB blocks to FILE until write fails, then prints the errno's name (ENOSPC when
 * the file system is full), whether anything was written, what fsync says, and removes the file (the space comes
 * back: a second file can be written). Prints no byte counts, so that its output equals a native run's on the same
 * (small tmpfs) directory.   diskfull FILE */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *name(int e)
{
    switch (e) {
    case ENOSPC: return "ENOSPC";
    case EDQUOT: return "EDQUOT";
    case EFBIG: return "EFBIG";
    case EIO: return "EIO";
    default: return "other";
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) return 1;
    static char block[65536];
    memset(block, 'x', sizeof block);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { printf("open failed %s\n", name(errno)); return 2; }
    long long total = 0;
    int err = 0;
    for (;;) {
        ssize_t n = write(fd, block, sizeof block);
        if (n < 0) { err = errno; break; }
        total += n;
        if (total > (1LL << 34)) break; /* 16 GiB: not a small file system */
    }
    printf("write failed %s\n", err ? name(err) : "never");
    printf("wrote something %s\n", total > 0 ? "yes" : "no");
    printf("fsync %s\n", fsync(fd) == 0 ? "ok" : name(errno));
    close(fd);
    printf("unlink %s\n", unlink(argv[1]) == 0 ? "ok" : name(errno));
    fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ssize_t n = fd >= 0 ? write(fd, block, 4096) : -1;
    printf("write after unlink %s\n", n == 4096 ? "ok" : name(errno));
    if (fd >= 0) close(fd);
    unlink(argv[1]);
    printf("done\n");
    return 0;
}
