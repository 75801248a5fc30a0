/* Signals that arrive while the program is blocked in a readiness wait: a pipe read with and without SA_RESTART, a
 * pipe write that had put part of its data in, poll, select, epoll_wait, and ppoll/epoll_pwait with a mask that
 * blocks the signal for the wait only. Prints what each call returned; the output must be the same natively. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/time.h>
#include <unistd.h>

static volatile int hits;
static volatile int feed_fd = -1;
static void on_alarm(int sig)
{
    (void)sig;
    if (++hits == 2 && feed_fd >= 0) (void)!write(feed_fd, "x", 1);
}

static void handler(int restart)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGALRM, &sa, NULL);
}

/* SIGALRM after ms milliseconds and every 100 ms after that, until the report: a tick that comes before the
 * program is blocked (a loaded machine) is followed by one that finds it blocked, so the output stays the same. */
static void alarm_in(int ms)
{
    struct itimerval it = { { 0, 100000 }, { ms / 1000, (ms % 1000) * 1000 } };
    setitimer(ITIMER_REAL, &it, NULL);
}

static void report(const char *what, long r)
{
    int e = errno;
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    printf("%-34s -> %ld%s%s (handler ran: %s)\n", what, r, r < 0 ? " " : "", r < 0 ? strerror(e) : "", hits ? "yes" : "no");
    hits = 0;
}

int main(void)
{
    int p[2];
    char buf[64];
    if (pipe(p) != 0) return 1;

    handler(0);
    alarm_in(50);
    report("read, no SA_RESTART", read(p[0], buf, sizeof buf));

    /* With SA_RESTART the read goes on after the handler: the first tick's handler only counts, the second one's
     * writes the byte the read waits for. */
    handler(1);
    feed_fd = p[1];
    alarm_in(50);
    report("read, SA_RESTART", read(p[0], buf, sizeof buf));
    feed_fd = -1;
    hits = 0;

    /* A write that fills the pipe and then blocks is interrupted: it returns what it put in. */
    handler(0);
    static char big[100000];
    alarm_in(50);
    report("write 100000, no SA_RESTART", write(p[1], big, sizeof big));
    /* Drain it. */
    long drained = 0;
    while (1)
    {
        struct pollfd pf = { p[0], POLLIN, 0 };
        if (poll(&pf, 1, 0) != 1) break;
        long n = read(p[0], big, sizeof big);
        if (n <= 0) break;
        drained += n;
    }
    printf("drained %ld\n", drained);

    handler(1); /* poll and select are not restarted, even under SA_RESTART */
    struct pollfd pf = { p[0], POLLIN, 0 };
    alarm_in(50);
    report("poll, SA_RESTART", poll(&pf, 1, 5000));

    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(p[0], &rs);
    struct timeval tv = { 5, 0 };
    alarm_in(50);
    long r = select(p[0] + 1, &rs, NULL, NULL, &tv);
    report("select, SA_RESTART", r);
    printf("select left between 4 and 5 s: %s\n", tv.tv_sec == 4 ? "yes" : "no");

    int ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 7 };
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
    alarm_in(50);
    report("epoll_wait, SA_RESTART", epoll_wait(ep, &ev, 1, 5000));

    /* With SIGALRM blocked for the wait only, the 50 ms alarm does not end a 300 ms wait; the handler runs after. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGALRM);
    struct timespec ts = { 0, 300000000 };
    alarm_in(50);
    report("ppoll 300 ms, SIGALRM masked", ppoll(&pf, 1, &ts, &mask));
    alarm_in(50);
    report("epoll_pwait 300 ms, SIGALRM masked", epoll_pwait(ep, &ev, 1, 300, &mask));
    sigset_t now;
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf("SIGALRM blocked after: %s\n", sigismember(&now, SIGALRM) ? "yes" : "no");
    return 0;
}
