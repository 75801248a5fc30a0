/* pipes: pipe/pipe2 (flags, F_GETFL/F_GETFD, F_SETFL O_NONBLOCK, F_DUPFD_CLOEXEC), how much a pipe holds (1-byte, 3000-byte and 100000-byte non-blocking writes, merging into the last page), F_GETPIPE_SZ/F_SETPIPE_SZ, FIONREAD, readv/writev, packet mode (O_DIRECT), EOF, EAGAIN, EPIPE with SIGPIPE ignored, poll states of both ends, fstat; `sigpipe` mode: a write with no reader kills with SIGPIPE (exit 141); `block KIND`: says "blocking" and then blocks for ever in a read of an empty pipe, epoll_wait, poll or select on it without timeout, or a write of 100000 bytes to an empty pipe nobody reads (checkpoint tests: a domain must still pause, save and be destroyed). Run: pipes [sigpipe | block read|epoll|poll|select|write]. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static char big[200000];

static const char *err(long rc) { return rc >= 0 ? "ok" : errno == EAGAIN ? "EAGAIN" : errno == EPIPE ? "EPIPE" : errno == EBADF ? "EBADF" : errno == EINVAL ? "EINVAL" : errno == EBUSY ? "EBUSY" : "other"; }

static long fill(int fd, size_t chunk)
{
    long total = 0;
    for (;;) {
        ssize_t n = write(fd, big, chunk);
        if (n < 0) { printf("  fill with %zu-byte writes stops with %s\n", chunk, err(n)); return total; }
        total += n;
        if ((size_t)n < chunk) { printf("  short write of %zd\n", n); }
    }
}

static int revents(int fd, short events)
{
    struct pollfd p = { fd, events, 0 };
    int n = poll(&p, 1, 0);
    return n == 1 ? p.revents : n == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    int p[2];
    setvbuf(stdout, NULL, _IONBF, 0);

    if (argc > 1 && strcmp(argv[1], "sigpipe") == 0) {
        signal(SIGPIPE, SIG_DFL); /* a test runner may have left it ignored */
        if (pipe(p) != 0) return 2;
        close(p[0]);
        printf("writing with no reader\n");
        write(p[1], "x", 1);
        printf("still alive (wrong)\n");
        return 3;
    }

    if (argc > 2 && strcmp(argv[1], "block") == 0) {
        if (pipe(p) != 0) return 2;
        printf("blocking\n");
        const char *k = argv[2];
        if (strcmp(k, "read") == 0) read(p[0], big, 10);
        else if (strcmp(k, "write") == 0) write(p[1], big, 100000);
        else if (strcmp(k, "poll") == 0) { struct pollfd f = { p[0], POLLIN, 0 }; poll(&f, 1, -1); }
        else if (strcmp(k, "select") == 0) { fd_set r; FD_ZERO(&r); FD_SET(p[0], &r); select(p[0] + 1, &r, NULL, NULL, NULL); }
        else if (strcmp(k, "epoll") == 0) {
            int ep = epoll_create1(0);
            struct epoll_event e = { .events = EPOLLIN }, out;
            epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e);
            epoll_wait(ep, &out, 1, -1);
        }
        printf("unblocked (wrong)\n");
        return 3;
    }

    if (pipe(p) != 0) { printf("pipe failed\n"); return 1; }
    printf("pipe: fds %d %d\n", p[0], p[1]);
    printf("F_GETFL read end 0x%x, write end 0x%x\n", fcntl(p[0], F_GETFL), fcntl(p[1], F_GETFL));
    printf("F_GETFD %d %d\n", fcntl(p[0], F_GETFD), fcntl(p[1], F_GETFD));
    struct stat st;
    fstat(p[0], &st);
    printf("fstat: fifo %s, mode %o, size %lld\n", S_ISFIFO(st.st_mode) ? "yes" : "no", st.st_mode & 0777, (long long)st.st_size);
    printf("F_GETPIPE_SZ %d\n", fcntl(p[1], F_GETPIPE_SZ));

    printf("write hello: %zd\n", write(p[1], "hello", 5));
    int avail = -1;
    ioctl(p[0], FIONREAD, &avail);
    printf("FIONREAD %d\n", avail);
    char buf[256];
    ssize_t n = read(p[0], buf, sizeof buf);
    printf("read %zd: %.*s\n", n, (int)n, buf);

    struct iovec out[3] = { { "ab", 2 }, { "", 0 }, { "cdef", 4 } };
    printf("writev %zd\n", writev(p[1], out, 3));
    char a[3] = { 0 }, b[10] = { 0 };
    struct iovec in[2] = { { a, 2 }, { b, 10 } };
    n = readv(p[0], in, 2);
    printf("readv %zd: '%s' '%s'\n", n, a, b);

    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    printf("after F_SETFL O_NONBLOCK: 0x%x\n", fcntl(p[0], F_GETFL));
    errno = 0;
    n = read(p[0], buf, 1);
    printf("read empty non-blocking: %s\n", err(n));
    printf("poll empty: read end 0x%x, write end 0x%x\n", revents(p[0], POLLIN | POLLOUT), revents(p[1], POLLIN | POLLOUT));
    write(p[1], "z", 1);
    printf("poll with data: read end 0x%x\n", revents(p[0], POLLIN));

    int d = fcntl(p[0], F_DUPFD_CLOEXEC, 10);
    printf("F_DUPFD_CLOEXEC -> >= 10 %s, F_GETFD %d, shares O_NONBLOCK %s\n", d >= 10 ? "yes" : "no", fcntl(d, F_GETFD), (fcntl(d, F_GETFL) & O_NONBLOCK) ? "yes" : "no");
    n = read(d, buf, sizeof buf);
    printf("read through the dup: %zd\n", n);
    close(d);

    close(p[1]);
    printf("writer closed: read end 0x%x\n", revents(p[0], POLLIN));
    n = read(p[0], buf, sizeof buf);
    printf("read after writer closed: %zd (EOF)\n", n);
    close(p[0]);

    /* Capacity. */
    pipe2(p, O_NONBLOCK | O_CLOEXEC);
    printf("pipe2(O_NONBLOCK|O_CLOEXEC): F_GETFL 0x%x 0x%x, F_GETFD %d %d\n", fcntl(p[0], F_GETFL), fcntl(p[1], F_GETFL), fcntl(p[0], F_GETFD), fcntl(p[1], F_GETFD));
    printf("1-byte writes hold %ld\n", fill(p[1], 1));
    printf("poll full: write end 0x%x\n", revents(p[1], POLLOUT));
    n = read(p[0], big, 4095);
    printf("read 4095: %zd; poll write end 0x%x\n", n, revents(p[1], POLLOUT));
    n = read(p[0], big, 1);
    printf("read 1 more: %zd; poll write end 0x%x\n", n, revents(p[1], POLLOUT));
    printf("then holds %ld more\n", fill(p[1], 1));
    close(p[0]); close(p[1]);

    pipe2(p, O_NONBLOCK);
    printf("3000-byte writes hold %ld\n", fill(p[1], 3000));
    printf("a 100-byte write merges into the last page: %zd\n", write(p[1], big, 100));
    printf("a 2000-byte write does not fit: %s\n", err(write(p[1], big, 2000)));
    ioctl(p[0], FIONREAD, &avail);
    printf("FIONREAD %d\n", avail);
    close(p[0]); close(p[1]);

    pipe2(p, O_NONBLOCK);
    printf("one 100000-byte write: %zd\n", write(p[1], big, 100000));
    printf("F_SETPIPE_SZ 4096 while holding 64 KiB: %s\n", err(fcntl(p[1], F_SETPIPE_SZ, 4096)));
    close(p[0]); close(p[1]);

    pipe2(p, O_NONBLOCK);
    int sz = fcntl(p[1], F_SETPIPE_SZ, 20000);
    printf("F_SETPIPE_SZ 20000 -> %d, F_GETPIPE_SZ %d\n", sz, fcntl(p[0], F_GETPIPE_SZ));
    printf("1-byte writes hold %ld\n", fill(p[1], 1));
    close(p[0]); close(p[1]);

    /* Packet mode. */
    if (pipe2(p, O_DIRECT | O_NONBLOCK) == 0) {
        write(p[1], "one", 3); write(p[1], "two", 3); write(p[1], "three", 5);
        for (int i = 0; i < 3; i++) { n = read(p[0], buf, sizeof buf); printf("packet %d: %.*s\n", i, (int)n, buf); }
        write(p[1], "abcdef", 6);
        n = read(p[0], buf, 2);
        printf("short read of a packet: %.*s, then %s\n", (int)n, buf, err(read(p[0], buf, sizeof buf)));
        close(p[0]); close(p[1]);
    }

    /* EPIPE. */
    signal(SIGPIPE, SIG_IGN);
    pipe(p);
    close(p[0]);
    printf("write end with no reader: poll 0x%x\n", revents(p[1], POLLOUT));
    errno = 0;
    n = write(p[1], "x", 1);
    printf("write with no reader: %s\n", err(n));
    printf("zero-length write with no reader: %zd\n", write(p[1], "x", 0));
    close(p[1]);
    printf("write to a closed fd: %s\n", err(write(p[1], "x", 1)));
    printf("pipe2 bad flags: %s\n", err(pipe2(p, 0x1)));
    return 0;
}
