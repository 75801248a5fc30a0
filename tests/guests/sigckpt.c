/* sigckpt: signal state that must survive checkpoints. A periodic ITIMER_REAL (25 ms) wakes pause() COUNT times
   ("tick N"); meanwhile SIGUSR1 waits pending and blocked, an alternate stack and SA_* flags are set, and a 10 s
   one-shot POSIX timer counts down. At the end: the itimer is still periodic, USR1 still pending, the alternate stack
   and dispositions as set, the one-shot's remaining time consistent with the monotonic clock (the expiry 10 s after arming, bracketed by
   clock reads), and unblocking USR1 runs its handler with the siginfo raise gave it.
   Run: sigckpt [COUNT] (default 40). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *yesno(int b) { return b ? "yes" : "no"; }
static volatile int alarms, usr1, usr1_code;
static char altstack[32768];

static void on_alarm(int sig) { (void)sig; alarms++; }
static void on_usr1(int sig, siginfo_t *si, void *ctx) { (void)sig; (void)ctx; usr1++; usr1_code = si->si_code; }

static long long ns(const struct timespec *t) { return t->tv_sec * 1000000000LL + t->tv_nsec; }

int main(int argc, char **argv)
{
    int count = argc > 1 ? atoi(argv[1]) : 40;
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGHUP);
    sigaction(SIGALRM, &sa, NULL);
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);
    stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0 };
    sigaltstack(&ss, NULL);

    sigset_t usr1set;
    sigemptyset(&usr1set);
    sigaddset(&usr1set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1set, NULL);
    raise(SIGUSR1);

    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGUSR2; /* never fires within the run */
    timer_t oneshot;
    timer_create(CLOCK_MONOTONIC, &sev, &oneshot);
    struct timespec armed_after, armed_before;
    struct itimerspec ten = { { 0, 0 }, { 10, 0 } };
    clock_gettime(CLOCK_MONOTONIC, &armed_after);
    timer_settime(oneshot, 0, &ten, NULL);
    clock_gettime(CLOCK_MONOTONIC, &armed_before);

    struct itimerval it = { { 0, 25000 }, { 0, 25000 } };
    setitimer(ITIMER_REAL, &it, NULL);
    for (int i = 1; i <= count; i++) {
        pause();
        printf("tick %d\n", i);
    }

    struct itimerval cur;
    getitimer(ITIMER_REAL, &cur);
    printf("itimer still periodic 25 ms %s\n", yesno(cur.it_interval.tv_sec == 0 && cur.it_interval.tv_usec == 25000));
    sigset_t pend;
    sigpending(&pend);
    printf("USR1 still pending %s, not yet handled %s\n", yesno(sigismember(&pend, SIGUSR1)), yesno(usr1 == 0));
    stack_t now;
    sigaltstack(NULL, &now);
    printf("altstack kept %s\n", yesno(now.ss_sp == altstack && now.ss_size == sizeof altstack && now.ss_flags == 0));
    sigaction(SIGALRM, NULL, &sa);
    printf("SIGALRM action kept %s\n", yesno(sa.sa_handler == on_alarm && (sa.sa_flags & SA_RESTART) && (sa.sa_flags & SA_ONSTACK) && sigismember(&sa.sa_mask, SIGHUP)));

    struct timespec before, after;
    struct itimerspec left;
    clock_gettime(CLOCK_MONOTONIC, &before);
    timer_gettime(oneshot, &left);
    clock_gettime(CLOCK_MONOTONIC, &after);
    long long seen = ns(&left.it_value);
    /* the expiry E was set 10 s after a moment between armed_after and armed_before, and E = now + seen for a now
       between before and after: so before + seen <= armed_before + 10 s and after + seen >= armed_after + 10 s */
    int kept = ns(&before) + seen <= ns(&armed_before) + 10000000000LL && ns(&after) + seen >= ns(&armed_after) + 10000000000LL;
    printf("one-shot timer keeps its deadline %s\n", yesno(kept));

    it.it_value.tv_usec = it.it_interval.tv_usec = 0;
    setitimer(ITIMER_REAL, &it, NULL);
    sigprocmask(SIG_UNBLOCK, &usr1set, NULL);
    printf("USR1 delivered on unblock %s, SI_TKILL %s\n", yesno(usr1 == 1), yesno(usr1_code == SI_TKILL));
    timer_delete(oneshot);
    return 0;
}
