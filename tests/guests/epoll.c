/* epoll: epoll_create/create1 (flags, errors), epoll_ctl ADD/MOD/DEL and their errors (EEXIST, ENOENT, EBADF, EPERM for /dev/null, EINVAL, ELOOP), level-triggered, edge-triggered and one-shot delivery on pipes, eventfd and timerfd, EPOLLHUP/EPOLLERR/EPOLLOUT, the round-robin order of a ready list read one event at a time, nested epoll, an fd dup'ed then closed (the item lives while the file does), epoll_pwait, a timeout. Run: epoll. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static const char *err(long rc) { return rc >= 0 ? "ok" : errno == EEXIST ? "EEXIST" : errno == ENOENT ? "ENOENT" : errno == EBADF ? "EBADF" : errno == EPERM ? "EPERM" : errno == EINVAL ? "EINVAL" : errno == ELOOP ? "ELOOP" : errno == EFAULT ? "EFAULT" : "other"; }

static int add(int ep, int fd, uint32_t events, uint64_t data)
{
    struct epoll_event e = { .events = events, .data.u64 = data };
    return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

static int mod(int ep, int fd, uint32_t events, uint64_t data)
{
    struct epoll_event e = { .events = events, .data.u64 = data };
    return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
}

static void wait_print(int ep, int max, int timeout, const char *what)
{
    struct epoll_event ev[8];
    int n = epoll_wait(ep, ev, max, timeout);
    printf("%s: %d", what, n);
    for (int i = 0; i < n; i++) printf(" [data %llu events 0x%x]", (unsigned long long)ev[i].data.u64, ev[i].events);
    printf("\n");
}

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    char buf[256];
    int ep = epoll_create1(0);
    printf("epoll_create1(0): F_GETFD %d, F_GETFL 0x%x\n", fcntl(ep, F_GETFD), fcntl(ep, F_GETFL));
    int ep2 = epoll_create1(EPOLL_CLOEXEC);
    printf("epoll_create1(EPOLL_CLOEXEC): F_GETFD %d\n", fcntl(ep2, F_GETFD));
    errno = 0; printf("epoll_create(0) (musl does not check the size): %s\n", err(epoll_create(0)));
    int ep3 = epoll_create(1);
    printf("epoll_create(1): %s\n", err(ep3));
    errno = 0; printf("epoll_create1(bad flags): %s\n", err(epoll_create1(1)));
    errno = 0; printf("read of an epoll fd: %s\n", err(read(ep, buf, 8)));

    int p[2];
    pipe(p);
    printf("ADD pipe read end (level): %s\n", err(add(ep, p[0], EPOLLIN, 1)));
    errno = 0; printf("ADD again: %s\n", err(add(ep, p[0], EPOLLIN, 1)));
    errno = 0; printf("MOD of an fd not added: %s\n", err(mod(ep, p[1], EPOLLOUT, 2)));
    errno = 0; printf("DEL of an fd not added: %s\n", err(epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL)));
    errno = 0; printf("ADD a closed fd: %s\n", err(add(ep, 99, EPOLLIN, 0)));
    errno = 0; printf("ADD to a closed epfd: %s\n", err(add(98, p[0], EPOLLIN, 0)));
    errno = 0; printf("ADD to a pipe as epfd: %s\n", err(add(p[1], p[0], EPOLLIN, 0)));
    errno = 0; printf("ADD the epoll to itself: %s\n", err(add(ep, ep, EPOLLIN, 0)));
    int dn = open("/dev/null", O_RDONLY);
    errno = 0; printf("ADD /dev/null: %s\n", err(add(ep, dn, EPOLLIN, 0)));
    errno = 0; printf("bad op: %s\n", err(epoll_ctl(ep, 99, p[0], &(struct epoll_event){ 0 })));
    errno = 0; printf("EPOLLEXCLUSIVE with MOD: %s\n", err(mod(ep, p[0], EPOLLIN | EPOLLEXCLUSIVE, 1)));
    errno = 0; printf("EPOLLEXCLUSIVE with EPOLLONESHOT: %s\n", err(add(ep, p[1], EPOLLOUT | EPOLLEXCLUSIVE | EPOLLONESHOT, 1)));
    errno = 0; printf("EPOLLEXCLUSIVE ADD: %s\n", err(add(ep, p[1], EPOLLOUT | EPOLLEXCLUSIVE, 1)));
    errno = 0; printf("MOD of an exclusive item: %s\n", err(mod(ep, p[1], EPOLLOUT, 1)));
    wait_print(ep, 4, 0, "exclusive write end");
    epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL);
    struct epoll_event ev[4];
    errno = 0; printf("epoll_wait maxevents 0: %s\n", err(epoll_wait(ep, ev, 0, 0)));
    errno = 0; printf("epoll_wait on a pipe: %s\n", err(epoll_wait(p[0], ev, 1, 0)));

    wait_print(ep, 4, 0, "level, empty");
    write(p[1], "abc", 3);
    wait_print(ep, 4, 0, "level, 3 bytes");
    wait_print(ep, 4, 0, "level, again");
    read(p[0], buf, 2);
    wait_print(ep, 4, 0, "level, 1 byte left");
    read(p[0], buf, 1);
    wait_print(ep, 4, 0, "level, drained");

    printf("MOD to edge-triggered: %s\n", err(mod(ep, p[0], EPOLLIN | EPOLLET, 11)));
    write(p[1], "x", 1);
    wait_print(ep, 4, 0, "edge, 1 byte");
    wait_print(ep, 4, 0, "edge, again");
    write(p[1], "y", 1);
    wait_print(ep, 4, 0, "edge, 1 more byte");
    read(p[0], buf, sizeof buf);

    printf("MOD to one-shot: %s\n", err(mod(ep, p[0], EPOLLIN | EPOLLONESHOT, 21)));
    write(p[1], "z", 1);
    wait_print(ep, 4, 0, "one-shot, 1 byte");
    wait_print(ep, 4, 0, "one-shot, again");
    write(p[1], "w", 1);
    wait_print(ep, 4, 0, "one-shot, more data");
    mod(ep, p[0], EPOLLIN | EPOLLONESHOT, 22);
    wait_print(ep, 4, 0, "one-shot re-armed");
    read(p[0], buf, sizeof buf);
    printf("DEL: %s\n", err(epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL)));
    write(p[1], "v", 1);
    wait_print(ep, 4, 0, "after DEL");
    read(p[0], buf, sizeof buf);

    add(ep, p[1], EPOLLOUT, 3);
    wait_print(ep, 4, 0, "write end");
    close(p[0]);
    wait_print(ep, 4, 0, "write end, reader closed");
    epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL);
    close(p[1]);

    pipe(p);
    add(ep, p[0], EPOLLIN, 4);
    write(p[1], "q", 1);
    close(p[1]);
    wait_print(ep, 4, 0, "read end, data and writer closed");
    read(p[0], buf, sizeof buf);
    wait_print(ep, 4, 0, "read end, writer closed, drained");
    epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL);
    close(p[0]);

    /* Round robin over three level-triggered ready files, one event per wait. */
    int e1 = eventfd(1, 0), e2 = eventfd(1, 0), e3 = eventfd(1, 0);
    add(ep, e1, EPOLLIN, 101);
    add(ep, e2, EPOLLIN, 102);
    add(ep, e3, EPOLLIN, 103);
    for (int i = 0; i < 4; i++) wait_print(ep, 1, 0, "one at a time");
    wait_print(ep, 2, 0, "two at a time");
    wait_print(ep, 8, 0, "all");
    uint64_t v;
    read(e2, &v, 8);
    wait_print(ep, 8, 0, "after draining the second");
    close(e1); close(e2); close(e3);
    wait_print(ep, 8, 0, "after closing them");

    /* Edge-triggered eventfd: every write is an edge. */
    int ev1 = eventfd(0, EFD_NONBLOCK);
    add(ep, ev1, EPOLLIN | EPOLLET, 201);
    wait_print(ep, 8, 0, "edge eventfd, 0");
    v = 1; write(ev1, &v, 8);
    wait_print(ep, 8, 0, "edge eventfd, +1");
    wait_print(ep, 8, 0, "edge eventfd, again");
    write(ev1, &v, 8);
    wait_print(ep, 8, 0, "edge eventfd, +1 more");
    read(ev1, &v, 8);
    printf("eventfd counter read: %llu\n", (unsigned long long)v);
    epoll_ctl(ep, EPOLL_CTL_DEL, ev1, NULL);

    /* A timer in the set: epoll_wait blocks until it fires. */
    int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    add(ep, t, EPOLLIN, 301);
    struct itimerspec s = { { 0, 0 }, { 0, 50000000 } };
    long long start = now_ns();
    timerfd_settime(t, 0, &s, NULL);
    wait_print(ep, 8, 5000, "timerfd 50 ms");
    printf("  after >= 50 ms %s\n", now_ns() - start >= 50000000 ? "yes" : "no");
    read(t, &v, 8);
    wait_print(ep, 8, 0, "timerfd read");
    struct itimerspec per = { { 0, 20000000 }, { 0, 20000000 } };
    mod(ep, t, EPOLLIN | EPOLLET, 302);
    timerfd_settime(t, 0, &per, NULL);
    wait_print(ep, 8, 5000, "periodic timerfd, edge");
    wait_print(ep, 8, 100, "periodic timerfd, no further edge until read (100 ms)");
    epoll_ctl(ep, EPOLL_CTL_DEL, t, NULL);
    close(t);

    /* Nested epoll and loops. */
    pipe(p);
    add(ep2, p[0], EPOLLIN, 401);
    printf("ADD epoll 2 into epoll 1: %s\n", err(add(ep, ep2, EPOLLIN, 402)));
    errno = 0; printf("ADD epoll 1 into epoll 2 (a loop): %s\n", err(add(ep2, ep, EPOLLIN, 403)));
    wait_print(ep, 8, 0, "nested, empty");
    write(p[1], "n", 1);
    wait_print(ep, 8, 0, "nested, data");
    wait_print(ep2, 8, 0, "inner");
    read(p[0], buf, 1);
    wait_print(ep, 8, 0, "nested, drained");

    /* The item lives as long as the open file, not the fd. */
    int d = dup(p[0]);
    add(ep3, p[0], EPOLLIN, 501);
    close(p[0]);
    write(p[1], "m", 1);
    wait_print(ep3, 8, 0, "fd closed, file still open through a dup");
    errno = 0; printf("DEL the closed fd: %s\n", err(epoll_ctl(ep3, EPOLL_CTL_DEL, p[0], NULL)));
    close(d);
    wait_print(ep3, 8, 0, "file closed");

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    start = now_ns();
    int n = epoll_pwait(ep3, ev, 4, 60, &mask);
    printf("epoll_pwait with nothing, 60 ms: %d, after >= 60 ms %s\n", n, now_ns() - start >= 60000000 ? "yes" : "no");
    return 0;
}
