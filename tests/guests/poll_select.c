/* poll_select: poll/ppoll/select/pselect on pipes, eventfd, /dev/null and stdout: ready counts and revents, negative fds ignored, POLLNVAL for a closed fd, EBADF from select, EINVAL (nfds over RLIMIT_NOFILE, bad timeouts), timeouts that expire (>= the time asked) and write back the time left (0), a wait that ends when a timerfd fires. Run: poll_select. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static const char *err(long rc) { return rc >= 0 ? "ok" : errno == EBADF ? "EBADF" : errno == EINVAL ? "EINVAL" : errno == EFAULT ? "EFAULT" : "other"; }

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    int p[2];
    pipe(p);
    int e = eventfd(0, 0);
    int dn = open("/dev/null", O_RDWR);
    struct pollfd f[6] = {
        { p[0], POLLIN, 0 }, { p[1], POLLOUT, 0 }, { e, POLLIN | POLLOUT, 0 }, { -1, POLLIN, 0x7 }, { dn, POLLIN | POLLOUT, 0 }, { 1, POLLOUT, 0 },
    };
    int n = poll(f, 6, 0);
    printf("poll: %d;", n);
    for (int i = 0; i < 6; i++) printf(" 0x%x", f[i].revents);
    printf("\n");
    write(p[1], "hi", 2);
    uint64_t one = 1;
    write(e, &one, 8);
    n = poll(f, 3, 0);
    printf("after writes: %d; 0x%x 0x%x 0x%x\n", n, f[0].revents, f[1].revents, f[2].revents);
    struct pollfd bad[2] = { { 77, POLLIN, 0 }, { p[0], POLLIN, 0 } };
    n = poll(bad, 2, 0);
    printf("closed fd: %d; 0x%x 0x%x\n", n, bad[0].revents, bad[1].revents);
    volatile nfds_t too_many = 1 << 20;
    errno = 0; printf("nfds over RLIMIT_NOFILE: %s\n", err(poll(f, too_many, 0)));
    errno = 0; printf("events not mine (POLLPRI only) on data: %d\n", poll(&(struct pollfd){ p[0], POLLPRI, 0 }, 1, 0));

    char buf[16];
    read(p[0], buf, sizeof buf);
    read(e, &one, 8);
    long long start = now_ns();
    n = poll(f, 1, 70);
    printf("poll 70 ms on an empty pipe: %d, after >= 70 ms %s\n", n, now_ns() - start >= 70000000 ? "yes" : "no");

    struct timespec ts = { 0, 50000000 };
    sigset_t mask;
    sigemptyset(&mask);
    start = now_ns();
    n = ppoll(f, 1, &ts, &mask);
    printf("ppoll 50 ms: %d, after >= 50 ms %s, time left written back %ld.%09ld\n", n, now_ns() - start >= 50000000 ? "yes" : "no", (long)ts.tv_sec, ts.tv_nsec);
    write(p[1], "x", 1);
    ts.tv_sec = 5; ts.tv_nsec = 0;
    n = ppoll(f, 1, &ts, NULL);
    printf("ppoll ready at once: %d, time left > 4 s %s\n", n, ts.tv_sec >= 4 ? "yes" : "no");
    n = ppoll(f, 1, NULL, NULL);
    printf("ppoll without timeout, ready: %d\n", n);
    struct timespec badts = { 0, 1000000000 };
    errno = 0; printf("ppoll bad timespec: %s\n", err(ppoll(f, 1, &badts, NULL)));
    read(p[0], buf, sizeof buf);

    fd_set r, w, x;
    FD_ZERO(&r); FD_ZERO(&w); FD_ZERO(&x);
    FD_SET(p[0], &r); FD_SET(e, &r); FD_SET(p[1], &w); FD_SET(p[0], &x);
    struct timeval tv = { 0, 0 };
    n = select(e + 1, &r, &w, &x, &tv);
    printf("select: %d; read %d %d, write %d, except %d\n", n, FD_ISSET(p[0], &r), FD_ISSET(e, &r), FD_ISSET(p[1], &w), FD_ISSET(p[0], &x));
    write(p[1], "y", 1);
    FD_ZERO(&r); FD_ZERO(&w);
    FD_SET(p[0], &r); FD_SET(e, &r); FD_SET(p[1], &w);
    n = select(e + 1, &r, &w, NULL, NULL);
    printf("select with data: %d; read %d %d, write %d\n", n, FD_ISSET(p[0], &r), FD_ISSET(e, &r), FD_ISSET(p[1], &w));
    read(p[0], buf, sizeof buf);
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    tv.tv_sec = 0; tv.tv_usec = 60000;
    start = now_ns();
    n = select(p[0] + 1, &r, NULL, NULL, &tv);
    printf("select 60 ms on an empty pipe: %d, after >= 60 ms %s, timeval left %ld.%06ld, set cleared %s\n", n, now_ns() - start >= 60000000 ? "yes" : "no", (long)tv.tv_sec, (long)tv.tv_usec, FD_ISSET(p[0], &r) ? "no" : "yes");
    FD_ZERO(&r);
    FD_SET(40, &r);
    tv.tv_sec = 0; tv.tv_usec = 0;
    errno = 0; printf("select with a closed fd: %s\n", err(select(41, &r, NULL, NULL, &tv)));
    tv.tv_usec = 1000000;
    FD_ZERO(&r);
    errno = 0; printf("select with 1000000 us (normalized): %s\n", err(select(1, &r, NULL, NULL, &tv)));
    tv.tv_sec = -1; tv.tv_usec = 0;
    errno = 0; printf("select negative timeval: %s\n", err(select(1, &r, NULL, NULL, &tv)));
    errno = 0; printf("select negative nfds: %s\n", err(select(-1, NULL, NULL, NULL, NULL)));

    ts.tv_sec = 0; ts.tv_nsec = 40000000;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    start = now_ns();
    n = pselect(p[0] + 1, &r, NULL, NULL, &ts, &mask);
    printf("pselect 40 ms: %d, after >= 40 ms %s\n", n, now_ns() - start >= 40000000 ? "yes" : "no");

    start = now_ns();
    n = poll(NULL, 0, 30);
    printf("poll(NULL, 0, 30) sleeps: %d, after >= 30 ms %s\n", n, now_ns() - start >= 30000000 ? "yes" : "no");
    tv.tv_sec = 0; tv.tv_usec = 30000;
    start = now_ns();
    n = select(0, NULL, NULL, NULL, &tv);
    printf("select(0, NULL, NULL, NULL, 30 ms) sleeps: %d, after >= 30 ms %s\n", n, now_ns() - start >= 30000000 ? "yes" : "no");

    int t = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec s = { { 0, 0 }, { 0, 30000000 } };
    start = now_ns(); /* before the timer is armed: a thread descheduled between the two must not shorten the wait seen */
    timerfd_settime(t, 0, &s, NULL);
    FD_ZERO(&r);
    FD_SET(t, &r);
    n = select(t + 1, &r, NULL, NULL, NULL);
    printf("select until a 30 ms timerfd fires: %d, after >= 30 ms %s\n", n, now_ns() - start >= 30000000 ? "yes" : "no");
    return 0;
}
