/* timerfd: timerfd_create/settime/gettime on CLOCK_MONOTONIC, CLOCK_REALTIME and CLOCK_BOOTTIME: one-shot (relative and TFD_TIMER_ABSTIME) and periodic timers read as expiration counts (a blocking read waits for the first), gettime's remaining time and interval, the old value from settime, disarming, EAGAIN when non-blocking, poll, EINVAL/EBADF cases. Timings printed as facts (>=). Run: timerfd. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static const char *err(long rc) { return rc >= 0 ? "ok" : errno == EAGAIN ? "EAGAIN" : errno == EINVAL ? "EINVAL" : errno == EBADF ? "EBADF" : errno == EPERM ? "EPERM" : "other"; }

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long long ms(long long ns) { return ns / 1000000; }

static struct itimerspec spec(long value_ms, long interval_ms)
{
    struct itimerspec s = { { interval_ms / 1000, interval_ms % 1000 * 1000000 }, { value_ms / 1000, value_ms % 1000 * 1000000 } };
    return s;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    int t = timerfd_create(CLOCK_MONOTONIC, 0);
    printf("timerfd_create: F_GETFL 0x%x, F_GETFD %d\n", fcntl(t, F_GETFL), fcntl(t, F_GETFD));
    struct stat st;
    fstat(t, &st);
    printf("fstat: type 0%o, perms %o\n", st.st_mode & S_IFMT, st.st_mode & 0777);
    struct itimerspec cur;
    timerfd_gettime(t, &cur);
    printf("disarmed: value %ld.%09ld interval %ld.%09ld\n", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec, (long)cur.it_interval.tv_sec, cur.it_interval.tv_nsec);

    struct itimerspec s = spec(80, 0);
    long long start = now_ns();
    timerfd_settime(t, 0, &s, NULL);
    timerfd_gettime(t, &cur);
    long long left = cur.it_value.tv_sec * 1000000000LL + cur.it_value.tv_nsec;
    printf("armed 80 ms: remaining in (0, 80 ms] %s, interval 0 %s\n", left > 0 && left <= 80000000 ? "yes" : "no", cur.it_interval.tv_sec == 0 && cur.it_interval.tv_nsec == 0 ? "yes" : "no");
    uint64_t ticks = 0;
    ssize_t n = read(t, &ticks, 8);
    long long el = now_ns() - start;
    printf("blocking read: %zd bytes, %llu expiration, after >= 80 ms %s\n", n, (unsigned long long)ticks, el >= 80000000 ? "yes" : "no");
    timerfd_gettime(t, &cur);
    printf("after a one-shot: value %ld.%09ld\n", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec);

    int nb = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    printf("TFD_NONBLOCK|TFD_CLOEXEC: F_GETFL 0x%x, F_GETFD %d\n", fcntl(nb, F_GETFL), fcntl(nb, F_GETFD));
    errno = 0;
    printf("read of a disarmed non-blocking timer: %s\n", err(read(nb, &ticks, 8)));

    s = spec(20, 20);
    timerfd_settime(nb, 0, &s, NULL);
    usleep(150000);
    n = read(nb, &ticks, 8);
    printf("periodic 20 ms after 150 ms: %zd bytes, >= 7 expirations %s\n", n, ticks >= 7 ? "yes" : "no");
    errno = 0;
    printf("read again at once: %s\n", err(read(nb, &ticks, 8)));
    timerfd_gettime(nb, &cur);
    left = cur.it_value.tv_sec * 1000000000LL + cur.it_value.tv_nsec;
    printf("gettime: remaining in (0, 20 ms] %s, interval %ld.%09ld\n", left > 0 && left <= 20000000 ? "yes" : "no", (long)cur.it_interval.tv_sec, cur.it_interval.tv_nsec);

    struct itimerspec old;
    s = spec(5000, 1000);
    timerfd_settime(nb, 0, &s, &old);
    printf("settime's old value: interval %ld.%09ld\n", (long)old.it_interval.tv_sec, old.it_interval.tv_nsec);
    timerfd_gettime(nb, &cur);
    printf("re-armed 5 s / 1 s: remaining > 4 s %s, interval %ld.%09ld\n", cur.it_value.tv_sec >= 4 ? "yes" : "no", (long)cur.it_interval.tv_sec, cur.it_interval.tv_nsec);
    s = spec(0, 0);
    timerfd_settime(nb, 0, &s, &old);
    timerfd_gettime(nb, &cur);
    printf("disarmed again: value %ld.%09ld, old remaining > 4 s %s\n", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec, old.it_value.tv_sec >= 4 ? "yes" : "no");

    struct pollfd p = { t, POLLIN, 0 };
    printf("poll of a disarmed timer: %d\n", poll(&p, 1, 0));
    s = spec(30, 0);
    start = now_ns();
    timerfd_settime(t, 0, &s, NULL);
    int r = poll(&p, 1, 5000);
    el = now_ns() - start;
    printf("poll until a 30 ms timer fires: %d, revents 0x%x, after >= 30 ms %s, long before 5 s %s\n", r, p.revents, el >= 30000000 ? "yes" : "no", el < 4000000000LL ? "yes" : "no");
    read(t, &ticks, 8);

    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 40000000;
    if (abs.tv_nsec >= 1000000000) { abs.tv_sec++; abs.tv_nsec -= 1000000000; }
    struct itimerspec as = { { 0, 0 }, abs };
    start = now_ns();
    timerfd_settime(t, TFD_TIMER_ABSTIME, &as, NULL);
    read(t, &ticks, 8);
    printf("absolute monotonic +40 ms: %llu expiration, after >= 40 ms %s\n", (unsigned long long)ticks, now_ns() - start >= 40000000 ? "yes" : "no");
    struct itimerspec past = { { 0, 0 }, { 1, 0 } };
    timerfd_settime(t, TFD_TIMER_ABSTIME, &past, NULL);
    n = read(t, &ticks, 8);
    printf("absolute time in the past: fires at once, %llu expiration\n", (unsigned long long)ticks);

    int rt = timerfd_create(CLOCK_REALTIME, 0);
    s = spec(25, 0);
    start = now_ns();
    timerfd_settime(rt, 0, &s, NULL);
    read(rt, &ticks, 8);
    printf("CLOCK_REALTIME 25 ms: %llu expiration, after >= 25 ms %s\n", (unsigned long long)ticks, now_ns() - start >= 25000000 ? "yes" : "no");
    int bt = timerfd_create(CLOCK_BOOTTIME, 0);
    s = spec(10, 0);
    timerfd_settime(bt, 0, &s, NULL);
    read(bt, &ticks, 8);
    printf("CLOCK_BOOTTIME 10 ms: %llu expiration\n", (unsigned long long)ticks);

    errno = 0; printf("bad clock: %s\n", err(timerfd_create(99, 0)));
    errno = 0; printf("bad create flags: %s\n", err(timerfd_create(CLOCK_MONOTONIC, 0x1)));
    struct itimerspec bad = { { 0, 0 }, { 0, 1000000000 } };
    errno = 0; printf("nsec out of range: %s\n", err(timerfd_settime(t, 0, &bad, NULL)));
    errno = 0; printf("bad settime flags: %s\n", err(timerfd_settime(t, 0x10, &s, NULL)));
    errno = 0; printf("settime on stdout: %s\n", err(timerfd_settime(1, 0, &s, NULL)));
    errno = 0; printf("settime on a closed fd: %s\n", err(timerfd_settime(77, 0, &s, NULL)));
    errno = 0; printf("gettime on stdout: %s\n", err(timerfd_gettime(1, &cur)));
    uint32_t small;
    errno = 0; printf("4-byte read: %s\n", err(read(t, &small, 4)));
    errno = 0; printf("write: %s\n", err(write(t, &ticks, 8)));
    return 0;
}
