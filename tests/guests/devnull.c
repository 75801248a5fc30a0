/* devnull: /dev/null, /dev/zero, /dev/full, /dev/urandom, /dev/random: open modes, read/write results, ENOSPC, lseek, fstat/stat (char device, 1:minor, 0666), access, F_GETFL, poll. Run: devnull. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static const char *err(long rc) { return rc >= 0 ? "ok" : errno == ENOSPC ? "ENOSPC" : errno == EBADF ? "EBADF" : errno == ENOENT ? "ENOENT" : errno == ENOTDIR ? "ENOTDIR" : errno == EEXIST ? "EEXIST" : "other"; }

static void describe(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) { printf("%s: stat %s\n", path, err(-1)); return; }
    printf("%s: char %s, mode %o, dev %u:%u, access W_OK %d\n", path, S_ISCHR(st.st_mode) ? "yes" : "no", st.st_mode & 0777, major(st.st_rdev), minor(st.st_rdev), access(path, W_OK));
}

int main(void)
{
    char buf[64];
    const char *devs[] = { "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom" };
    for (int i = 0; i < 5; i++) describe(devs[i]);

    int fd = open("/dev/null", O_RDWR);
    printf("/dev/null O_RDWR: F_GETFL 0x%x\n", fcntl(fd, F_GETFL));
    ssize_t wn = write(fd, buf, 100), rn = read(fd, buf, sizeof buf);
    printf("  write 100: %zd, read: %zd, lseek: %ld\n", wn, rn, (long)lseek(fd, 100, SEEK_SET));
    struct stat st;
    fstat(fd, &st);
    printf("  fstat: char %s, dev %u:%u\n", S_ISCHR(st.st_mode) ? "yes" : "no", major(st.st_rdev), minor(st.st_rdev));
    struct pollfd p = { fd, POLLIN | POLLOUT, 0 };
    int pn = poll(&p, 1, 0);
    printf("  poll: %d 0x%x\n", pn, p.revents);
    close(fd);
    fd = open("/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    printf("/dev/null O_WRONLY|O_CREAT|O_TRUNC: %s, F_GETFL 0x%x\n", err(fd), fcntl(fd, F_GETFL));
    errno = 0; printf("  read from write-only: %s\n", err(read(fd, buf, 1)));
    close(fd);
    errno = 0; printf("/dev/null O_CREAT|O_EXCL: %s\n", err(open("/dev/null", O_WRONLY | O_CREAT | O_EXCL, 0644)));
    errno = 0; printf("/dev/null O_DIRECTORY: %s\n", err(open("/dev/null", O_RDONLY | O_DIRECTORY)));

    fd = open("/dev/zero", O_RDONLY);
    memset(buf, 0x55, sizeof buf);
    ssize_t n = read(fd, buf, sizeof buf);
    int zero = 1;
    for (int i = 0; i < 64; i++) zero &= buf[i] == 0;
    printf("/dev/zero read: %zd, all zero %s, pread %zd\n", n, zero ? "yes" : "no", pread(fd, buf, 8, 1000));
    close(fd);

    fd = open("/dev/full", O_RDWR);
    errno = 0;
    const char *fe = err(write(fd, buf, 1));
    printf("/dev/full: write %s, read %zd\n", fe, read(fd, buf, 8));
    close(fd);

    fd = open("/dev/urandom", O_RDWR);
    unsigned char r1[32], r2[32];
    read(fd, r1, 32);
    n = read(fd, r2, 32);
    ssize_t sn = write(fd, "seed", 4);
    printf("/dev/urandom: read %zd, two reads differ %s, write accepted %zd\n", n, memcmp(r1, r2, 32) ? "yes" : "no", sn);
    close(fd);
    fd = open("/dev/random", O_RDONLY | O_NONBLOCK);
    printf("/dev/random: read %zd\n", read(fd, r1, 16));
    close(fd);
    return 0;
}
