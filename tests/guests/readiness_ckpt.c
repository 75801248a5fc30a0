/* readiness_ckpt: readiness state that must survive checkpoints (save/restore, migration, Remus): bytes buffered in pipes (slot by slot: a full pipe of 3000-byte writes still takes a 100-byte write into its last page), an eventfd counter, an armed periodic timerfd (its remaining time), an epoll set (interest list, the ready list with an unconsumed edge-triggered event, a fired one-shot still disarmed), O_NONBLOCK and FD_CLOEXEC. Sets it up, prints a tick every TICK_MS for TICKS ticks (checkpoints happen meanwhile), then reads it all back, blocking in epoll_wait, read and poll. Run: readiness_ckpt [TICKS] [TICK_MS] (default 10 100). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static char chunk[3000];

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void wait_print(int ep, int timeout, const char *what)
{
    struct epoll_event ev[8];
    int n = epoll_wait(ep, ev, 8, timeout);
    printf("%s: %d", what, n);
    for (int i = 0; i < n; i++) printf(" [data %llu events 0x%x]", (unsigned long long)ev[i].data.u64, ev[i].events);
    printf("\n");
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int ticks = argc > 1 ? atoi(argv[1]) : 10, tick_ms = argc > 2 ? atoi(argv[2]) : 100;
    int ep = epoll_create1(EPOLL_CLOEXEC);

    int q[2];
    pipe2(q, O_NONBLOCK);
    struct epoll_event e = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = 4 };
    epoll_ctl(ep, EPOLL_CTL_ADD, q[0], &e);
    write(q[1], "q", 1);
    wait_print(ep, 0, "one-shot fires once");

    int p[2];
    pipe2(p, O_NONBLOCK);
    write(p[1], "buffered-in-the-pipe", 20);
    e.events = EPOLLIN; e.data.u64 = 1;
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &e);

    int ev = eventfd(7, EFD_NONBLOCK);
    e.events = EPOLLIN | EPOLLET; e.data.u64 = 2;
    epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e);

    int full[2];
    pipe2(full, O_NONBLOCK);
    long held = 0;
    ssize_t n;
    while ((n = write(full[1], chunk, sizeof chunk)) > 0) held += n;
    printf("3000-byte writes hold %ld\n", held);

    int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    e.events = EPOLLIN; e.data.u64 = 3;
    epoll_ctl(ep, EPOLL_CTL_ADD, t, &e);
    long long first_ms = (long long)ticks * tick_ms + 500;
    struct itimerspec s = { { 0, 300000000 }, { first_ms / 1000, first_ms % 1000 * 1000000 } };
    /* The expiry lies between these two bounds. */
    long long earliest = now_ns() + first_ms * 1000000LL;
    timerfd_settime(t, 0, &s, NULL);
    long long latest = now_ns() + first_ms * 1000000LL;
    printf("set up\n");
    fflush(stdout);

    for (int i = 0; i < ticks; i++) {
        struct timespec d = { tick_ms / 1000, tick_ms % 1000 * 1000000L };
        nanosleep(&d, NULL);
        printf("tick %d\n", i);
        fflush(stdout);
    }

    printf("F_GETFL of the pipe has O_NONBLOCK: %s, F_GETFD of the epoll: %d\n", (fcntl(p[0], F_GETFL) & O_NONBLOCK) ? "yes" : "no", fcntl(ep, F_GETFD));
    int avail = 0;
    ioctl(p[0], FIONREAD, &avail);
    printf("pipe holds %d\n", avail);
    struct itimerspec cur;
    long long asked = now_ns();
    timerfd_gettime(t, &cur);
    long long left = cur.it_value.tv_sec * 1000000000LL + cur.it_value.tv_nsec;
    printf("timer still armed: %s, remaining not past its expiry: %s, interval %ld.%09ld\n", left > 0 ? "yes" : "no", asked + left <= latest ? "yes" : "no", (long)cur.it_interval.tv_sec, cur.it_interval.tv_nsec);
    wait_print(ep, 0, "ready (one-shot stays disarmed)");
    wait_print(ep, 0, "again (level-triggered only)");
    char buf[64];
    n = read(p[0], buf, sizeof buf);
    printf("pipe: %.*s\n", (int)n, buf);
    uint64_t v = 0;
    read(ev, &v, 8);
    printf("eventfd counter: %llu\n", (unsigned long long)v);
    n = read(q[0], buf, sizeof buf);
    printf("one-shot pipe still holds: %.*s\n", (int)n, buf);
    printf("a 100-byte write into the full pipe: %zd\n", write(full[1], chunk, 100));
    errno = 0;
    n = write(full[1], chunk, 2000);
    printf("a 2000-byte write: %s\n", n < 0 && errno == EAGAIN ? "EAGAIN" : "wrong");
    ioctl(full[0], FIONREAD, &avail);
    printf("full pipe holds %d\n", avail);
    fflush(stdout);

    wait_print(ep, -1, "blocking until the timer fires");
    printf("  fired after its expiry: %s\n", now_ns() >= earliest ? "yes" : "no");
    read(t, &v, 8);
    printf("  expirations >= 1: %s\n", v >= 1 ? "yes" : "no");
    int fl = fcntl(t, F_GETFL);
    fcntl(t, F_SETFL, fl & ~O_NONBLOCK);
    read(t, &v, 8);
    printf("blocking read of the next expiry: >= 1 %s\n", v >= 1 ? "yes" : "no");
    fflush(stdout);

    int empty[2];
    pipe(empty);
    struct pollfd pf = { empty[0], POLLIN, 0 };
    long long before = now_ns();
    int r = poll(&pf, 1, 400);
    printf("poll 400 ms on an empty pipe: %d, after >= 400 ms %s\n", r, now_ns() - before >= 400000000 ? "yes" : "no");
    return 0;
}
