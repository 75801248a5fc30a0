/* sigtimedwait: rt_sigtimedwait/sigwaitinfo/sigwait take a pending blocked signal with its siginfo (thread-directed first, lowest first, RT queued in order), time out with EAGAIN (zero and 100 ms timeouts), EINVAL on a bad timeout, a signal sent by a timer during the wait, EINTR when an unblocked handled signal comes instead. Run: sigtimedwait (no args), or sigtimedwait wait SECONDS (one wait for a signal that never comes: EAGAIN after at least SECONDS; checkpoint tests). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile int handled;
static void on_alarm(int sig) { (void)sig; handled++; }

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int wait_only(long seconds)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct timespec t = {seconds, 0};
    double t0 = now();
    long r = sigtimedwait(&set, NULL, &t);
    int e = errno;
    printf("waited %ld s for SIGUSR1: %ld %s, at least %ld s: %s\n", seconds, r, r < 0 ? strerror(e) : "", seconds,
           now() - t0 >= seconds ? "yes" : "no");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "wait") == 0) return wait_only(atol(argv[2]));
    sigset_t set, all;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGRTMIN);
    sigaddset(&set, SIGRTMIN + 1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct timespec zero = {0, 0};
    siginfo_t si;

    long r = sigtimedwait(&set, &si, &zero);
    printf("nothing pending, zero timeout: %ld %s\n", r, r < 0 ? strerror(errno) : "");

    raise(SIGUSR2);
    kill(getpid(), SIGUSR1);
    union sigval v = {.sival_int = 7};
    sigqueue(getpid(), SIGRTMIN + 1, v);
    v.sival_int = 8;
    sigqueue(getpid(), SIGRTMIN + 1, v);
    v.sival_int = 5;
    sigqueue(getpid(), SIGRTMIN, v);
    for (int i = 0; i < 5; i++) {
        memset(&si, 0, sizeof si);
        int sig = sigwaitinfo(&set, &si);
        printf("took %s signo %d code %d pid is mine %s value %d\n",
               sig == SIGUSR1 ? "SIGUSR1" : sig == SIGUSR2 ? "SIGUSR2" : sig == SIGRTMIN ? "SIGRTMIN" : sig == SIGRTMIN + 1 ? "SIGRTMIN+1" : "?",
               si.si_signo, si.si_code, si.si_pid == getpid() ? "yes" : "no",
               si.si_code == SI_QUEUE ? si.si_value.sival_int : -1);
    }
    sigset_t pending;
    sigpending(&pending);
    printf("none left pending: %s\n", sigismember(&pending, SIGUSR1) || sigismember(&pending, SIGRTMIN + 1) ? "no" : "yes");

    struct timespec t100 = {0, 100000000};
    double t0 = now();
    r = sigtimedwait(&set, NULL, &t100);
    printf("100 ms timeout: %ld %s, waited >= 100 ms: %s\n", r, r < 0 ? strerror(errno) : "", now() - t0 >= 0.1 ? "yes" : "no");

    struct timespec bad = {0, 1000000000};
    r = sigtimedwait(&set, NULL, &bad);
    printf("nsec out of range: %ld %s\n", r, r < 0 ? strerror(errno) : "");
    r = syscall(SYS_rt_sigtimedwait, &set, NULL, &zero, 4);
    printf("sigsetsize 4: %ld %s\n", r, r < 0 ? strerror(errno) : "");

    /* A blocked signal from a timer arrives during the wait. */
    sigset_t alrm;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    sigprocmask(SIG_BLOCK, &alrm, NULL);
    struct itimerval it = {{0, 0}, {0, 50000}};
    setitimer(ITIMER_REAL, &it, NULL);
    struct timespec t2 = {2, 0};
    memset(&si, 0, sizeof si);
    r = sigtimedwait(&alrm, &si, &t2);
    printf("timer's SIGALRM taken: %s code %s\n", r == SIGALRM ? "yes" : "no", si.si_code == SI_KERNEL ? "SI_KERNEL" : "other");

    /* An unblocked, handled signal that is not waited for: EINTR, and its handler runs. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    sigprocmask(SIG_UNBLOCK, &alrm, NULL);
    setitimer(ITIMER_REAL, &it, NULL);
    r = sigtimedwait(&set, NULL, &t2);
    printf("interrupted by a handled signal: %ld %s, handler ran %d\n", r, r < 0 ? strerror(errno) : "", handled);

    /* sigwait (glibc: rt_sigtimedwait without a timeout). */
    raise(SIGUSR2);
    int got = 0;
    int e = sigwait(&set, &got);
    printf("sigwait: %d signal %s\n", e, got == SIGUSR2 ? "SIGUSR2" : "other");

    /* SIGKILL/SIGSTOP in the set are ignored; an empty set with a timeout just times out. */
    sigfillset(&all);
    sigemptyset(&set);
    r = sigtimedwait(&set, NULL, &zero);
    printf("empty set: %ld %s\n", r, r < 0 ? strerror(errno) : "");
    return 0;
}
