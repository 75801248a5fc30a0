/* Volume file API: every path and data call a program makes on a writable directory, errors included, one line per
 * result (errno names, never inode numbers, times of day or paths).
 *   fileapi DIR api      the calls; run natively on a fresh DIR and in a domain with DIR as a volume at the same
 *                        guest path: the outputs must be identical.
 *   fileapi DIR domain   what only a domain does (fallocate modes, writable shared mappings refused, .remus-orphans
 *                        invisible); each line says ok or FAIL.
 *   fileapi DIR escape   paths cannot leave the volume ("..", symlinks to / and out, loops); each line ok or FAIL.
 *   fileapi DIR journal  a fixed sequence of changes whose journal entries the test knows (VolumeJournalingTests).
 *   fileapi DIR ckpt N   N writes 10 ms apart to an open file, each read back through a second description (both
 *                        offsets printed), then the file read back whole (a checkpoint restored mid-way keeps the
 *                        offsets). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#define RENAME_EXCHANGE 2
#endif

/* struct statx as the kernel has it (musl's headers may lack it) */
struct sx {
    unsigned int mask, blksize;
    unsigned long long attributes;
    unsigned int nlink, uid, gid;
    unsigned short mode, pad0;
    unsigned long long ino, size, blocks, attributes_mask;
    long long rest[26];
};

static const char *D;
static char pbuf[8][8192];
static int pi;

static const char *P(const char *rel)
{
    char *b = pbuf[pi++ & 7];
    snprintf(b, 8192, "%s/%s", D, rel);
    return b;
}

static const char *en(int e)
{
    switch (e) {
    case 0: return "ok";
    case EPERM: return "EPERM"; case ENOENT: return "ENOENT"; case EBADF: return "EBADF"; case EACCES: return "EACCES";
    case EEXIST: return "EEXIST"; case EXDEV: return "EXDEV"; case ENOTDIR: return "ENOTDIR"; case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL"; case ENOSPC: return "ENOSPC"; case ESPIPE: return "ESPIPE"; case EROFS: return "EROFS";
    case ENAMETOOLONG: return "ENAMETOOLONG"; case ENOTEMPTY: return "ENOTEMPTY"; case ELOOP: return "ELOOP";
    case EBUSY: return "EBUSY"; case ENXIO: return "ENXIO"; case ENODEV: return "ENODEV"; case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENOSYS: return "ENOSYS"; case EFAULT: return "EFAULT";
    default: { static char s[32]; snprintf(s, sizeof s, "errno%d", e); return s; }
    }
}

/* prints "what: ok" (or the value) / "what: ENAME" */
static long R(const char *what, long r)
{
    if (r < 0) printf("%s: %s\n", what, en(errno));
    else printf("%s: %ld\n", what, r);
    return r;
}

static void st_line(const char *what, const char *path, int follow)
{
    struct stat st;
    int r = follow ? stat(path, &st) : lstat(path, &st);
    if (r < 0) { printf("%s: %s\n", what, en(errno)); return; }
    const char *t = S_ISREG(st.st_mode) ? "reg" : S_ISDIR(st.st_mode) ? "dir" : S_ISLNK(st.st_mode) ? "lnk" : "other";
    printf("%s: %s mode %04o nlink %lu size %ld\n", what, t, st.st_mode & 07777, (unsigned long)(S_ISDIR(st.st_mode) ? 0 : st.st_nlink),
           S_ISDIR(st.st_mode) ? 0L : (long)st.st_size);
}

static void fst_line(const char *what, int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0) { printf("%s: %s\n", what, en(errno)); return; }
    printf("%s: mode %04o nlink %lu size %ld\n", what, st.st_mode & 07777, (unsigned long)(S_ISDIR(st.st_mode) ? 0 : st.st_nlink), (long)st.st_size);
}

static void content(const char *what, const char *path)
{
    char buf[256];
    int fd = open(path, O_RDONLY);
    if (fd < 0) { printf("%s: %s\n", what, en(errno)); return; }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0) { printf("%s: %s\n", what, en(errno)); return; }
    buf[n] = 0;
    for (ssize_t i = 0; i < n; i++) if (buf[i] == '\n') buf[i] = '|'; else if (buf[i] == 0) buf[i] = '0';
    printf("%s: [%s]\n", what, buf);
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void listing(const char *what, const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) { printf("%s: %s\n", what, en(errno)); return; }
    char buf[4096], *names[256];
    int count = 0;
    long n;
    while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
        for (long at = 0; at < n;) {
            unsigned short len = *(unsigned short *)(buf + at + 16);
            char *name = buf + at + 19;
            if (strcmp(name, ".") && strcmp(name, "..") && count < 256) names[count++] = strdup(name);
            at += len;
        }
    close(fd);
    qsort(names, count, sizeof *names, cmp);
    printf("%s:", what);
    for (int i = 0; i < count; i++) { printf(" %s", names[i]); free(names[i]); }
    printf("\n");
}

static void api(void)
{
    char buf[256];
    /* open, create, write, read */
    int fd = R("creat a", open(P("a"), O_CREAT | O_WRONLY | O_TRUNC, 0666));
    R("write a", write(fd, "hello world\n", 12));
    fst_line("fstat a", fd);
    R("read on O_WRONLY", read(fd, buf, 4));
    close(fd);
    R("open a O_EXCL", open(P("a"), O_CREAT | O_EXCL | O_WRONLY, 0644));
    R("open missing", open(P("missing"), O_RDONLY));
    R("open a/x", open(P("a/x"), O_RDONLY));
    R("open dir O_WRONLY", open(D, O_WRONLY));
    R("open a O_DIRECTORY", open(P("a"), O_RDONLY | O_DIRECTORY));
    R("open missing/x O_CREAT", open(P("missing/x"), O_CREAT | O_WRONLY, 0644));
    R("open dir O_CREAT", open(D, O_CREAT | O_RDONLY, 0644));
    fd = open(P("a"), O_RDONLY);
    R("write on O_RDONLY", write(fd, "x", 1));
    R("ftruncate on O_RDONLY", ftruncate(fd, 0));
    R("pwrite on O_RDONLY", pwrite(fd, "x", 1, 0));
    close(fd);
    /* O_APPEND, lseek, pread/pwrite, readv/writev */
    fd = open(P("a"), O_RDWR | O_APPEND);
    R("lseek 0", lseek(fd, 0, SEEK_SET));
    R("append", write(fd, "more\n", 5));
    R("offset after append", lseek(fd, 0, SEEK_CUR));
    R("pwrite 2 (O_APPEND: at the end)", pwrite(fd, "XY", 2, 2));
    R("fcntl F_SETFL 0", fcntl(fd, F_SETFL, 0));
    R("pwrite 2", pwrite(fd, "XY", 2, 2));
    memset(buf, 0, sizeof buf);
    R("pread 0", pread(fd, buf, 8, 0));
    printf("pread data: %s\n", buf);
    R("offset unchanged", lseek(fd, 0, SEEK_CUR));
    struct iovec iov[3] = {{"ab", 2}, {"", 0}, {"cd\n", 3}};
    R("lseek end", lseek(fd, 0, SEEK_END));
    R("writev", writev(fd, iov, 3));
    char r1[4] = {0}, r2[8] = {0};
    struct iovec rv[2] = {{r1, 3}, {r2, 7}};
    R("lseek 6", lseek(fd, 6, SEEK_SET));
    R("readv", readv(fd, rv, 2));
    printf("readv data: %s/%s\n", r1, r2);
    R("SEEK_DATA 0", lseek(fd, 0, SEEK_DATA));
    R("SEEK_HOLE 0", lseek(fd, 0, SEEK_HOLE));
    R("SEEK_DATA past end", lseek(fd, 1000, SEEK_DATA));
    R("lseek negative", lseek(fd, -1, SEEK_SET));
    R("lseek bad whence", lseek(fd, 0, 9));
    R("fsync", fsync(fd));
    R("fdatasync", fdatasync(fd));
    R("sync_file_range", sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE));
    R("syncfs", syncfs(fd));
    sync();
    R("ftruncate 3", ftruncate(fd, 3));
    R("ftruncate -1", ftruncate(fd, -1));
    fst_line("fstat after ftruncate", fd);
    R("fallocate 0 8192", fallocate(fd, 0, 0, 8192));
    fst_line("fstat after fallocate", fd);
    R("fallocate bad length", fallocate(fd, 0, 0, 0));
    close(fd);
    R("truncate a 5", truncate(P("a"), 5));
    R("truncate missing", truncate(P("missing"), 5));
    R("truncate dir", truncate(D, 5));
    content("a", P("a"));
    R("O_TRUNC", (fd = open(P("a"), O_WRONLY | O_TRUNC)));
    fst_line("fstat after O_TRUNC", fd);
    R("write", write(fd, "data\n", 5));
    close(fd);
    /* umask, creat */
    R("umask 077 (old)", umask(077));
    fd = R("creat b", creat(P("b"), 0666));
    close(fd);
    st_line("stat b", P("b"), 1);
    R("umask 022 (old)", umask(022));
    /* directories */
    R("mkdir d", mkdir(P("d"), 0777));
    R("mkdir d again", mkdir(P("d"), 0777));
    R("mkdir missing/x", mkdir(P("missing/x"), 0777));
    R("mkdir a/x", mkdir(P("a/x"), 0777));
    R("mkdir d/.", mkdir(P("d/."), 0777));
    st_line("stat d", P("d"), 1);
    R("mkdir d/e", mkdir(P("d/e"), 0700));
    R("rmdir d (not empty)", rmdir(P("d")));
    R("rmdir a (a file)", rmdir(P("a")));
    R("rmdir missing", rmdir(P("missing")));
    R("rmdir d/e/.", rmdir(P("d/e/.")));
    R("unlink d", unlink(P("d")));
    R("unlink missing", unlink(P("missing")));
    R("unlink a/", unlink(P("a/")));
    R("rmdir d/e", rmdir(P("d/e")));
    /* rename */
    R("rename a d/a", rename(P("a"), P("d/a")));
    R("rename missing", rename(P("missing"), P("z")));
    R("rename d/a a (back)", rename(P("d/a"), P("a")));
    R("renameat2 NOREPLACE onto b", syscall(SYS_renameat2, AT_FDCWD, P("a"), AT_FDCWD, P("b"), RENAME_NOREPLACE));
    R("renameat2 EXCHANGE a b", syscall(SYS_renameat2, AT_FDCWD, P("a"), AT_FDCWD, P("b"), RENAME_EXCHANGE));
    content("a after exchange", P("a"));
    content("b after exchange", P("b"));
    R("renameat2 EXCHANGE with missing", syscall(SYS_renameat2, AT_FDCWD, P("a"), AT_FDCWD, P("missing"), RENAME_EXCHANGE));
    R("renameat2 bad flags", syscall(SYS_renameat2, AT_FDCWD, P("a"), AT_FDCWD, P("b"), 3));
    R("rename d into d/sub", rename(P("d"), P("d/sub")));
    R("rename file over dir", rename(P("a"), P("d")));
    R("mkdir d2", mkdir(P("d2"), 0755));
    R("mkdir d/x", mkdir(P("d/x"), 0755));
    R("rename dir over non-empty dir", rename(P("d2"), P("d")));
    R("rename dir over empty dir", rename(P("d"), P("d2")));
    R("rename a a", rename(P("a"), P("a")));
    /* links */
    R("link a l", link(P("a"), P("l")));
    st_line("stat a (2 links)", P("a"), 1);
    R("link a l again", link(P("a"), P("l")));
    R("link dir", link(P("d2"), P("dl")));
    R("link missing", link(P("missing"), P("x")));
    R("unlink l", unlink(P("l")));
    R("symlink a s", symlink("a", P("s")));
    R("symlink again", symlink("a", P("s")));
    R("symlink empty target", symlink("", P("e")));
    st_line("lstat s", P("s"), 0);
    st_line("stat s", P("s"), 1);
    memset(buf, 0, sizeof buf);
    R("readlink s", readlink(P("s"), buf, sizeof buf));
    printf("readlink data: %s\n", buf);
    R("readlink a (not a link)", readlink(P("a"), buf, sizeof buf));
    R("readlink missing", readlink(P("missing"), buf, sizeof buf));
    R("linkat s (no follow)", linkat(AT_FDCWD, P("s"), AT_FDCWD, P("s2"), 0));
    st_line("lstat s2", P("s2"), 0);
    R("linkat s AT_SYMLINK_FOLLOW", linkat(AT_FDCWD, P("s"), AT_FDCWD, P("s3"), AT_SYMLINK_FOLLOW));
    st_line("lstat s3", P("s3"), 0);
    R("open s O_NOFOLLOW", open(P("s"), O_RDONLY | O_NOFOLLOW));
    R("symlink dangling", symlink("target", P("dang")));
    fd = R("open dangling O_CREAT", open(P("dang"), O_CREAT | O_WRONLY, 0644));
    close(fd);
    st_line("stat target", P("target"), 1);
    R("symlink loop1", symlink("loop2", P("loop1")));
    R("symlink loop2", symlink("loop1", P("loop2")));
    R("open loop", open(P("loop1"), O_RDONLY));
    R("stat loop", stat(P("loop1"), &(struct stat){0}));
    R("symlink dir link", symlink("d2", P("dlink")));
    fd = R("creat through dir link", open(P("dlink/f"), O_CREAT | O_WRONLY, 0600));
    close(fd);
    st_line("stat d2/f", P("d2/f"), 1);
    /* access, chmod, times */
    R("access F_OK", access(P("a"), F_OK));
    R("access W_OK", access(P("a"), W_OK));
    R("access X_OK", access(P("a"), X_OK));
    R("access X_OK dir", access(D, X_OK));
    R("access missing", access(P("missing"), F_OK));
    R("faccessat bad mode", faccessat(AT_FDCWD, P("a"), 8, 0));
    R("chmod a 0751", chmod(P("a"), 0751));
    R("access X_OK after chmod", access(P("a"), X_OK));
    st_line("stat a", P("a"), 1);
    fd = open(P("a"), O_RDONLY);
    R("fchmod 0640", fchmod(fd, 0640));
    fst_line("fstat a", fd);
    R("fchmodat 0604", fchmodat(AT_FDCWD, P("a"), 0604, 0));
    R("chmod missing", chmod(P("missing"), 0600));
    R("fchown to its own owner", fchown(fd, getuid(), getgid()));
    R("chown -1 -1", chown(P("a"), -1, -1));
    R("lchown missing", lchown(P("missing"), -1, -1));
    struct timespec ts[2] = {{1000000000, 123}, {1100000000, 456}};
    R("utimensat", utimensat(AT_FDCWD, P("a"), ts, 0));
    struct stat st;
    stat(P("a"), &st);
    printf("times: %ld.%ld %ld.%ld\n", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec, (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    struct timespec omit[2] = {{0, UTIME_OMIT}, {1200000000, 0}};
    R("futimens omit atime", futimens(fd, omit));
    fstat(fd, &st);
    printf("times: %ld.%ld %ld.%ld\n", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec, (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    struct timeval tv[2] = {{1300000000, 7}, {1400000000, 8}};
    R("utimes", utimes(P("a"), tv));
    stat(P("a"), &st);
    printf("times: %ld.%ld %ld.%ld\n", (long)st.st_atim.tv_sec, st.st_atim.tv_nsec, (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    struct utimbuf ub = {1500000000, 1600000000};
    R("utime", utime(P("a"), &ub));
    stat(P("a"), &st);
    printf("times: %ld %ld\n", (long)st.st_atim.tv_sec, (long)st.st_mtim.tv_sec);
    R("utimensat nofollow on s", utimensat(AT_FDCWD, P("s"), ts, AT_SYMLINK_NOFOLLOW));
    lstat(P("s"), &st);
    printf("link times: %ld %ld\n", (long)st.st_atim.tv_sec, (long)st.st_mtim.tv_sec);
    R("utimensat bad nsec", utimensat(AT_FDCWD, P("a"), (struct timespec[2]){{0, 2000000000}, {0, 0}}, 0));
    R("utimensat missing", utimensat(AT_FDCWD, P("missing"), ts, 0));
    struct statfs sf;
    long sr = statfs(P("a"), &sf);
    printf("statfs: %s bsize>0 %d\n", sr == 0 ? "ok" : en(errno), sr == 0 && sf.f_bsize > 0);
    sr = fstatfs(fd, &sf);
    printf("fstatfs: %s bsize>0 %d\n", sr == 0 ? "ok" : en(errno), sr == 0 && sf.f_bsize > 0);
    R("statfs missing", statfs(P("missing"), &sf));
    close(fd);
    /* statx, newfstatat */
    struct sx sx;
    R("statx a", syscall(SYS_statx, AT_FDCWD, P("a"), 0, 0x7ff, &sx));
    printf("statx: size %llu mode %04o\n", sx.size, sx.mode & 07777);
    R("statx s nofollow", syscall(SYS_statx, AT_FDCWD, P("s"), AT_SYMLINK_NOFOLLOW, 0x7ff, &sx));
    printf("statx: link %d\n", S_ISLNK(sx.mode));
    /* *at calls relative to a directory fd of the volume */
    int dfd = R("open dir", open(D, O_RDONLY | O_DIRECTORY));
    R("mkdirat sub", mkdirat(dfd, "sub", 0755));
    int sub = R("openat sub", openat(dfd, "sub", O_RDONLY | O_DIRECTORY));
    fd = R("openat sub/f", openat(sub, "f", O_CREAT | O_RDWR, 0644));
    R("write sub/f", write(fd, "in sub\n", 7));
    close(fd);
    R("fstatat sub/f", fstatat(sub, "f", &st, 0));
    printf("fstatat size %ld\n", (long)st.st_size);
    R("faccessat sub/f", faccessat(sub, "f", R_OK | W_OK, 0));
    R("renameat f -> ../g", renameat(sub, "f", dfd, "g"));
    content("g", P("g"));
    R("linkat g -> sub/h", linkat(dfd, "g", sub, "h", 0));
    R("symlinkat sub/sl", symlinkat("../g", sub, "sl"));
    content("sub/sl", P("sub/sl"));
    memset(buf, 0, sizeof buf);
    R("readlinkat sub/sl", readlinkat(sub, "sl", buf, sizeof buf));
    printf("readlinkat data: %s\n", buf);
    R("fchmodat sub/h", fchmodat(sub, "h", 0600, 0));
    R("utimensat sub/h", utimensat(sub, "h", ts, 0));
    R("unlinkat sub/h", unlinkat(sub, "h", 0));
    R("unlinkat sub/sl", unlinkat(sub, "sl", 0));
    R("unlinkat sub AT_REMOVEDIR", unlinkat(dfd, "sub", AT_REMOVEDIR));
    R("openat in removed dir", openat(sub, "x", O_CREAT | O_WRONLY, 0644));
    R("fstat removed dir", fstat(sub, &st));
    printf("removed dir nlink %lu\n", (unsigned long)st.st_nlink);
    R("getdents removed dir", syscall(SYS_getdents64, sub, buf, sizeof buf));
    close(sub);
    fd = open(P("g"), O_RDONLY);
    R("openat with a file as dirfd", openat(fd, "x", O_RDONLY));
    close(fd);
    R("openat bad dirfd", openat(99, "x", O_RDONLY));
    R("fstat bad fd", fstat(99, &st));
    close(dfd);
    /* unlink and rename over open files: the open descriptions keep working */
    fd = open(P("open1"), O_CREAT | O_RDWR, 0644);
    R("write open1", write(fd, "still here\n", 11));
    R("unlink open1", unlink(P("open1")));
    fst_line("fstat unlinked", fd);
    R("write unlinked", write(fd, "more\n", 5));
    memset(buf, 0, sizeof buf);
    R("pread unlinked", pread(fd, buf, 64, 0));
    printf("unlinked data: %s", buf);
    R("stat unlinked name", stat(P("open1"), &st));
    close(fd);
    fd = open(P("open2"), O_CREAT | O_RDWR, 0644);
    R("write open2", write(fd, "old\n", 4));
    int nf = open(P("new2"), O_CREAT | O_RDWR, 0644);
    R("write new2", write(nf, "new\n", 4));
    R("rename new2 over open2", rename(P("new2"), P("open2")));
    memset(buf, 0, sizeof buf);
    R("pread replaced", pread(fd, buf, 64, 0));
    printf("replaced data: %s", buf);
    fst_line("fstat replaced", fd);
    R("write renamed", write(nf, "again\n", 6));
    content("open2", P("open2"));
    close(fd);
    close(nf);
    R("mkdir od", mkdir(P("od"), 0755));
    fd = open(P("od/f"), O_CREAT | O_RDWR, 0644);
    R("rename od -> od2", rename(P("od"), P("od2")));
    R("write in renamed dir", write(fd, "moved\n", 6));
    content("od2/f", P("od2/f"));
    close(fd);
    /* getdents of the root */
    listing("root", D);
    listing("od2", P("od2"));
    /* mmap of volume files */
    fd = open(P("od2/f"), O_RDONLY);
    char *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("mmap private: %s", m == MAP_FAILED ? "failed\n" : m);
    if (m != MAP_FAILED) munmap(m, 4096);
    m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    printf("mmap shared read: %s", m == MAP_FAILED ? "failed\n" : m);
    if (m != MAP_FAILED) munmap(m, 4096);
    close(fd);
    /* names too long */
    char longname[300];
    memset(longname, 'n', 256);
    longname[256] = 0;
    R("open 256-byte name", open(P(longname), O_CREAT | O_WRONLY, 0644));
    R("mkdir 256-byte name", mkdir(P(longname), 0755));
    char *huge = malloc(5000);
    memset(huge, 'a', 4999);
    huge[4999] = 0;
    for (int i = 100; i < 4999; i += 100) huge[i] = '/';
    R("open 5000-byte path", open(huge, O_RDONLY));
    free(huge);
    R("unlink .", unlink(P(".")));
    R("rmdir .", rmdir(P(".")));
    R("rename .", rename(P("."), P("zz")));
    listing("root at the end", D);
}

static int fails;
static void check(const char *what, long got, long want)
{
    int e = got < 0 ? errno : 0;
    long wantErr = want < 0 ? -want : 0;
    int ok = want < 0 ? (got < 0 && e == wantErr) : got == want;
    if (!ok) fails++;
    printf("%s: %s (%s)\n", what, ok ? "ok" : "FAIL", got < 0 ? en(e) : "succeeded");
}

static void domain_only(void)
{
    int fd = open(P("f"), O_CREAT | O_RDWR, 0644);
    write(fd, "0123456789", 10);
    check("fallocate KEEP_SIZE refused", fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 4096), -EOPNOTSUPP);
    check("fallocate PUNCH_HOLE refused", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4), -EOPNOTSUPP);
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    check("writable shared mapping refused", m == MAP_FAILED ? -1 : 0, -ENODEV);
    m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    check("read-only shared mapping works", m == MAP_FAILED ? -1 : 0, 0);
    check("mprotect it writable refused", mprotect(m, 4096, PROT_READ | PROT_WRITE), -EACCES);
    m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    check("writable private mapping works", m == MAP_FAILED ? -1 : 0, 0);
    check("unlink the open file", unlink(P("f")), 0);
    struct stat st;
    check(".remus-orphans is not there", stat(P(".remus-orphans"), &st), -ENOENT);
    check(".remus-orphans/0 is not there", stat(P(".remus-orphans/0"), &st), -ENOENT);
    check("open .remus-orphans/0", open(P(".remus-orphans/0"), O_RDONLY), -ENOENT);
    check("mkdir .remus-orphans", mkdir(P(".remus-orphans"), 0755), -EPERM);
    check("create .remus-orphans", open(P(".remus-orphans"), O_CREAT | O_WRONLY, 0644), -EPERM);
    check("symlink to .remus-orphans followed", (symlink(".remus-orphans/0", P("sneak")), open(P("sneak"), O_RDONLY)), -ENOENT);
    check("rename onto .remus-orphans", (close(open(P("g"), O_CREAT | O_WRONLY, 0644)), rename(P("g"), P(".remus-orphans"))), -EPERM);
    char buf[4096];
    int dfd = open(D, O_RDONLY | O_DIRECTORY);
    long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
    int seen = 0;
    for (long at = 0; at < n; at += *(unsigned short *)(buf + at + 16))
        if (!strcmp(buf + at + 19, ".remus-orphans")) seen = 1;
    check("getdents does not list .remus-orphans", seen ? -1 : 0, 0);
    close(dfd);
    check("the unlinked file still reads", pread(fd, buf, 10, 0), 10);
    close(fd);
}

static void escape(void)
{
    struct stat root, st;
    stat(D, &root);
    int fd = open(P("inside"), O_CREAT | O_WRONLY, 0644);
    write(fd, "inside\n", 7);
    close(fd);
    check("../../etc/passwd stays inside", open(P("../../etc/passwd"), O_RDONLY), -ENOENT);
    check("/etc/passwd is not visible", open("/etc/passwd", O_RDONLY), -ENOENT);
    check(".. of the mount point is its root", stat(P(".."), &st) == 0 && st.st_ino == root.st_ino ? 0 : -1, 0);
    check("../inside is found inside", open(P("../inside"), O_RDONLY) >= 0 ? 0 : -1, 0);
    symlink("/", P("toroot"));
    check("a symlink to / is the volume's root", stat(P("toroot"), &st) == 0 && st.st_ino == root.st_ino ? 0 : -1, 0);
    check("toroot/inside", open(P("toroot/inside"), O_RDONLY) >= 0 ? 0 : -1, 0);
    symlink("/etc/passwd", P("abs"));
    check("an absolute symlink out stays inside", open(P("abs"), O_RDONLY), -ENOENT);
    symlink("../../../../../..", P("up"));
    check("a relative symlink up stops at the root", stat(P("up"), &st) == 0 && st.st_ino == root.st_ino ? 0 : -1, 0);
    check("up/etc/passwd", open(P("up/etc/passwd"), O_RDONLY), -ENOENT);
    symlink("l2", P("l1"));
    symlink("l1", P("l2"));
    check("a symlink loop", open(P("l1"), O_RDONLY), -ELOOP);
    int dfd = open(D, O_RDONLY | O_DIRECTORY);
    check("openat(dirfd, ../../etc/passwd)", openat(dfd, "../../etc/passwd", O_RDONLY), -ENOENT);
    check("openat(dirfd, ../inside)", openat(dfd, "../inside", O_RDONLY) >= 0 ? 0 : -1, 0);
    close(dfd);
    check("rename out of the volume", rename(P("inside"), "/inside-moved"), -EXDEV);
    check("link out of the volume", link(P("inside"), "/inside-linked"), -EXDEV);
    check("mkdir outside", mkdir("/newdir", 0755), -EROFS);
    check("create outside", open("/newfile", O_CREAT | O_WRONLY, 0644), -EROFS);
    char sibling[8192];
    snprintf(sibling, sizeof sibling, "%s-outside", D);
    check("the volume's host sibling is invisible", open(sibling, O_RDONLY), -ENOENT);
    char parent[8192];
    snprintf(parent, sizeof parent, "%s", D);
    *strrchr(parent, '/') = 0;
    check("the mount point's parent is a directory", stat(parent, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1, 0);
    check("but it cannot be opened", open(parent, O_RDONLY | O_DIRECTORY), -ENOENT);
    check("mkdir the mount point", mkdir(D, 0755), -EEXIST);
    check("rmdir the mount point", rmdir(D), -EBUSY);
}

static void journal(void)
{
    mkdir(P("d"), 0750);
    int fd = open(P("d/f"), O_CREAT | O_WRONLY, 0666);
    write(fd, "abc", 3);
    close(fd);
    fd = open(P("d/f"), O_WRONLY | O_APPEND);
    lseek(fd, 0, SEEK_SET);
    write(fd, "de", 2);
    fcntl(fd, F_SETFL, 0);
    pwrite(fd, "Z", 1, 0);
    ftruncate(fd, 4);
    fallocate(fd, 0, 0, 100);
    symlink("d", P("ln"));
    close(open(P("ln/g"), O_CREAT | O_WRONLY | O_TRUNC, 0600));
    rename(P("ln/g"), P("d/h"));
    link(P("d/h"), P("k"));
    chmod(P("ln/h"), 0640);
    utimensat(AT_FDCWD, P("k"), (struct timespec[2]){{1, 2}, {3, 4}}, 0);
    unlink(P("k"));
    unlink(P("d/f"));
    lseek(fd, 0, SEEK_END);
    write(fd, "x", 1);
    close(fd);
    rename(P("d"), P("e"));
    unlink(P("e/h"));
    rmdir(P("e"));
    fd = open(P("t"), O_CREAT | O_WRONLY, 0644);
    write(fd, "1", 1);
    close(fd);
    close(open(P("t"), O_WRONLY | O_TRUNC));
    printf("done\n");
}

static void ckpt(int count)
{
    /* a writer and a reader, each with its own offset; the reader follows the writer a line behind */
    int fd = open(P("log"), O_CREAT | O_RDWR | O_TRUNC, 0644);
    int rd = open(P("log"), O_RDONLY);
    int gone = open(P("gone"), O_CREAT | O_RDWR, 0644); /* unlinked while open: it lives in .remus-orphans */
    write(gone, "unlinked but open\n", 18);
    unlink(P("gone"));
    char line[64], got[64];
    for (int i = 0; i < count; i++) {
        int n = snprintf(line, sizeof line, "line %04d\n", i);
        write(fd, line, n);
        long r = read(rd, got, n);
        printf("offset %ld read %.*s", (long)lseek(fd, 0, SEEK_CUR), (int)(r > 0 ? r : 0), got);
        if (r <= 0) printf("\n");
        char g[32] = {0};
        if (pread(gone, g, 18, 0) != 18 || strcmp(g, "unlinked but open\n")) printf("the unlinked file changed: %s\n", g);
        fflush(stdout);
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    lseek(fd, 0, SEEK_SET);
    char buf[65536];
    long total = 0, n;
    unsigned long sum = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (long i = 0; i < n; i++) { sum = sum * 31 + (unsigned char)buf[i]; total++; }
    printf("read back %ld bytes sum %lu\n", total, sum);
    close(fd);
    close(rd);
    close(gone);
    listing("at the end", D);
}

int main(int argc, char **argv)
{
    if (argc < 3) { fprintf(stderr, "usage: fileapi DIR api|domain|escape|ckpt N\n"); return 2; }
    D = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(argv[2], "api")) api();
    else if (!strcmp(argv[2], "domain")) domain_only();
    else if (!strcmp(argv[2], "escape")) escape();
    else if (!strcmp(argv[2], "journal")) journal();
    else if (!strcmp(argv[2], "ckpt")) ckpt(argc > 3 ? atoi(argv[3]) : 50);
    else return 2;
    return fails ? 1 : 0;
}
