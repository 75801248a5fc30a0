/* eventfd: eventfd/eventfd2 counters (initial value, adds, read takes all), EFD_SEMAPHORE, EFD_NONBLOCK/EFD_CLOEXEC flags (F_GETFL/F_GETFD), EAGAIN on 0 and on overflow, EINVAL (short buffer, 2^64-1, bad flags), poll states, fstat. Run: eventfd. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *err(long rc) { return rc >= 0 ? "ok" : errno == EAGAIN ? "EAGAIN" : errno == EINVAL ? "EINVAL" : errno == EBADF ? "EBADF" : "other"; }

static int revents(int fd)
{
    struct pollfd p = { fd, POLLIN | POLLOUT, 0 };
    return poll(&p, 1, 0) < 0 ? -1 : p.revents;
}

static void rd(int fd, const char *what)
{
    uint64_t v = 0;
    errno = 0;
    ssize_t n = read(fd, &v, 8);
    if (n == 8) printf("%s: read %llu\n", what, (unsigned long long)v);
    else printf("%s: read %s\n", what, err(n));
}

static void wr(int fd, uint64_t v, const char *what)
{
    errno = 0;
    ssize_t n = write(fd, &v, 8);
    printf("%s: write %llu -> %s\n", what, (unsigned long long)v, n == 8 ? "8" : err(n));
}

int main(void)
{
    int e = eventfd(5, 0);
    printf("eventfd(5): F_GETFL 0x%x, F_GETFD %d, poll 0x%x\n", fcntl(e, F_GETFL), fcntl(e, F_GETFD), revents(e));
    struct stat st;
    fstat(e, &st);
    printf("fstat: type 0%o, perms %o\n", st.st_mode & S_IFMT, st.st_mode & 0777);
    rd(e, "counter");
    wr(e, 3, "counter");
    wr(e, 4, "counter");
    rd(e, "counter");
    wr(e, 0, "counter");
    printf("after a write of 0: poll 0x%x\n", revents(e));
    uint32_t small;
    printf("4-byte read: %s\n", err(read(e, &small, 4)));
    printf("4-byte write: %s\n", err(write(e, &small, 4)));
    wr(e, UINT64_MAX, "counter");
    uint64_t two[2] = { 9, 100 };
    errno = 0;
    printf("16-byte write: %s\n", err(write(e, two, 16)));
    wr(e, 9, "counter");
    uint64_t got[2] = { 0, 0 };
    ssize_t gn = read(e, got, 16);
    printf("16-byte read: %zd, value %llu\n", gn, (unsigned long long)got[0]);
    close(e);

    e = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    printf("eventfd(0, NONBLOCK|CLOEXEC): F_GETFL 0x%x, F_GETFD %d, poll 0x%x\n", fcntl(e, F_GETFL), fcntl(e, F_GETFD), revents(e));
    rd(e, "empty");
    wr(e, 1, "near max");
    wr(e, UINT64_MAX - 1, "near max");
    wr(e, UINT64_MAX - 2, "near max");
    printf("at max: poll 0x%x\n", revents(e));
    wr(e, 1, "at max");
    rd(e, "at max");
    close(e);

    e = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
    for (int i = 0; i < 4; i++) rd(e, "semaphore");
    wr(e, 2, "semaphore");
    rd(e, "semaphore");
    close(e);

    errno = 0;
    printf("eventfd bad flags: %s\n", err(eventfd(0, 0x10)));
    return 0;
}
