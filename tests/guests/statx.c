/* statx: statx agrees with fstat/stat (mode, ino, nlink, uid, gid, size, blocks, blksize, rdev, dev, times) on a --file, a --file directory, stdout, /dev/null and /proc/self/maps, by fd (AT_EMPTY_PATH) and by path; K_STATX_BASIC_STATS in the mask; EINVAL/EBADF/ENOENT/EFAULT. Run: statx FILE DIR (both with --file). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* The kernel's struct kstatx, spelled out: musl before 1.2.5 has none. */
struct kstatx_ts { long long tv_sec; unsigned tv_nsec; int pad; };
struct kstatx {
    unsigned stx_mask, stx_blksize;
    unsigned long long stx_attributes;
    unsigned stx_nlink, stx_uid, stx_gid;
    unsigned short stx_mode, pad1;
    unsigned long long stx_ino, stx_size, stx_blocks, stx_attributes_mask;
    struct kstatx_ts stx_atime, stx_btime, stx_ctime, stx_mtime;
    unsigned stx_rdev_major, stx_rdev_minor, stx_dev_major, stx_dev_minor;
    unsigned long long spare[14];
};
#define K_STATX_TYPE 0x1u
#define K_STATX_BASIC_STATS 0x7ffu
#define K_AT_STATX_DONT_SYNC 0x4000
#ifndef SYS_statx
#define SYS_statx 332
#endif

static long sx(int dirfd, const char *path, int flags, unsigned mask, struct kstatx *b)
{
    return syscall(SYS_statx, dirfd, path, flags, mask, b);
}

static const char *agree(const struct stat *st, const struct kstatx *x)
{
    if ((x->stx_mask & K_STATX_BASIC_STATS) != K_STATX_BASIC_STATS) return "mask lacks basic stats";
    if (x->stx_mode != (st->st_mode & 0xffff)) return "mode";
    if (x->stx_ino != st->st_ino) return "ino";
    if (x->stx_nlink != st->st_nlink) return "nlink";
    if (x->stx_uid != st->st_uid || x->stx_gid != st->st_gid) return "owner";
    if (x->stx_size != (unsigned long long)st->st_size) return "size";
    if (x->stx_blocks != (unsigned long long)st->st_blocks) return "blocks";
    if (x->stx_blksize != (unsigned)st->st_blksize) return "blksize";
    if (makedev(x->stx_rdev_major, x->stx_rdev_minor) != st->st_rdev) return "rdev";
    if (makedev(x->stx_dev_major, x->stx_dev_minor) != st->st_dev) return "dev";
    if (x->stx_mtime.tv_sec != st->st_mtim.tv_sec || x->stx_mtime.tv_nsec != (unsigned)st->st_mtim.tv_nsec) return "mtime";
    if (x->stx_ctime.tv_sec != st->st_ctim.tv_sec || x->stx_atime.tv_sec != st->st_atim.tv_sec) return "ctime/atime";
    return "agrees";
}

static void by_path(const char *label, const char *path)
{
    struct stat st;
    struct kstatx x;
    if (stat(path, &st) != 0) { printf("%s: stat failed errno %d\n", label, errno); return; }
    memset(&x, 0xa5, sizeof x);
    long r = sx(AT_FDCWD, path, 0, K_STATX_BASIC_STATS, &x);
    printf("%s by path: %ld %s\n", label, r, r == 0 ? agree(&st, &x) : strerror(errno));
}

static void by_fd(const char *label, int fd)
{
    struct stat st;
    struct kstatx x;
    if (fstat(fd, &st) != 0) { printf("%s: fstat failed errno %d\n", label, errno); return; }
    memset(&x, 0x5a, sizeof x);
    long r = sx(fd, "", AT_EMPTY_PATH, K_STATX_BASIC_STATS, &x);
    printf("%s by fd: %ld %s\n", label, r, r == 0 ? agree(&st, &x) : strerror(errno));
}

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: statx FILE DIR\n"); return 2; }
    const char *file = argv[1];
    by_path("file", file);
    int fd = open(file, O_RDONLY);
    by_fd("file", fd);
    by_path("directory", argv[2]);
    int dfd = open(argv[2], O_RDONLY | O_DIRECTORY);
    by_fd("directory", dfd);
    by_fd("stdout", 1);
    by_path("/dev/null", "/dev/null");
    int maps = open("/proc/self/maps", O_RDONLY);
    by_fd("/proc/self/maps", maps);

    struct kstatx x;
    long r = sx(AT_FDCWD, file, 0x6000, K_STATX_BASIC_STATS, &x);
    printf("both sync types: %ld %s\n", r, r ? strerror(errno) : "");
    r = sx(AT_FDCWD, file, 0x80000000, K_STATX_BASIC_STATS, &x);
    printf("unknown flag: %ld %s\n", r, r ? strerror(errno) : "");
    r = sx(AT_FDCWD, file, 0, 0x80000000u, &x);
    printf("reserved mask bit: %ld %s\n", r, r ? strerror(errno) : "");
    r = sx(77, "", AT_EMPTY_PATH, K_STATX_BASIC_STATS, &x);
    printf("bad fd: %ld %s\n", r, r ? strerror(errno) : "");
    r = sx(AT_FDCWD, "/no/such/file", 0, K_STATX_BASIC_STATS, &x);
    printf("missing path: %ld %s\n", r, r ? strerror(errno) : "");
    r = sx(AT_FDCWD, file, 0, K_STATX_BASIC_STATS, (struct kstatx *)8);
    printf("bad buffer: %ld %s\n", r, r ? strerror(errno) : "");
    r = sx(fd, "", 0, K_STATX_BASIC_STATS, &x);
    printf("empty path without AT_EMPTY_PATH: %ld %s\n", r, r ? strerror(errno) : "");
    r = sx(AT_FDCWD, file, K_AT_STATX_DONT_SYNC | AT_SYMLINK_NOFOLLOW, K_STATX_TYPE, &x);
    printf("type only, don't sync: %ld type %s\n", r, S_ISREG(x.stx_mode) ? "regular" : "other");
    return 0;
}
