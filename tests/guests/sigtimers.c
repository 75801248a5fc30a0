/* sigtimers: timers that signal and system calls they interrupt. alarm cuts a nanosleep short (EINTR, rem left) and
   ends pause; a futex wait interrupted by a handler without SA_RESTART fails EINTR, with SA_RESTART it is restarted
   (and then sees the value the handler changed: EAGAIN); a read of stdin (left open by the caller, no data) likewise;
   alarm's return value; setitimer ITIMER_REAL periodic (5 ticks, then disarmed; getitimer reads it back);
   timer_create on CLOCK_MONOTONIC with SIGEV_SIGNAL (si_code SI_TIMER, si_value, periodic), SIGEV_THREAD_ID, and
   SIGEV_NONE (timer_gettime counts down, no signal); timer_delete; SIGALRM interrupting a busy loop; ITIMER_PROF
   and a CLOCK_PROCESS_CPUTIME_ID timer firing during work. Run: sigtimers [read] ("read": also the read case,
   which needs a stdin that stays open and empty). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define FUTEX_WAIT_PRIVATE 128

static const char *yesno(int b) { return b ? "yes" : "no"; }

static volatile int alarms, rts, word;
static volatile siginfo_t last;

static void on_alarm(int sig, siginfo_t *si, void *ctx)
{
    (void)sig; (void)ctx;
    last = *si;
    alarms++;
    word = 1; /* a futex waiter restarted after this sees a new value */
}

static void on_rt(int sig, siginfo_t *si, void *ctx)
{
    (void)sig; (void)ctx;
    last = *si;
    rts++;
}

static void install(int sig, void (*h)(int, siginfo_t *, void *), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

/* Waits until *counter reaches target: the signal is blocked between the check and the wait (sigsuspend), so it
   cannot slip in between, however late the program runs. */
static void wait_for(volatile int *counter, int target, int sig)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, sig);
    sigprocmask(SIG_BLOCK, &block, &old);
    sigdelset(&old, sig);
    while (*counter < target) sigsuspend(&old);
    sigprocmask(SIG_UNBLOCK, &block, NULL);
}

static void arm_real(long first_us, long interval_us)
{
    struct itimerval it = { { interval_us / 1000000, interval_us % 1000000 }, { first_us / 1000000, first_us % 1000000 } };
    setitimer(ITIMER_REAL, &it, NULL);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    install(SIGALRM, on_alarm, 0);

    /* The waits below are interrupted by a periodic timer, so that a tick which comes before the wait begins (a
       loaded machine) is followed by one that interrupts it. */

    /* nanosleep cut short */
    arm_real(50000, 50000);
    struct timespec req = { 5, 0 }, rem = { 0, 0 };
    int before = alarms;
    errno = 0;
    int rc = nanosleep(&req, &rem);
    printf("nanosleep: rc -1 %s EINTR %s rem left %s, handler ran %s, si_code SI_KERNEL %s\n", yesno(rc == -1), yesno(errno == EINTR),
           yesno(rem.tv_sec >= 3 && rem.tv_sec < 5), yesno(alarms > before), yesno(last.si_code == SI_KERNEL));

    /* even with SA_RESTART, nanosleep is not restarted */
    install(SIGALRM, on_alarm, SA_RESTART);
    errno = 0;
    rc = nanosleep(&req, NULL);
    printf("nanosleep SA_RESTART: EINTR %s\n", yesno(rc == -1 && errno == EINTR));

    /* pause */
    install(SIGALRM, on_alarm, 0);
    errno = 0;
    rc = pause();
    printf("pause: EINTR %s\n", yesno(rc == -1 && errno == EINTR));

    /* futex wait: EINTR without SA_RESTART (a tick before the wait makes it EAGAIN: wait again), restarted with it
       (then EAGAIN: the handler changed the word) */
    long frc;
    do {
        word = 0;
        errno = 0;
        frc = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    } while (frc == -1 && errno == EAGAIN);
    printf("futex without SA_RESTART: EINTR %s\n", yesno(frc == -1 && errno == EINTR));
    install(SIGALRM, on_alarm, SA_RESTART);
    word = 0;
    errno = 0;
    frc = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    printf("futex with SA_RESTART: restarted, EAGAIN %s\n", yesno(frc == -1 && errno == EAGAIN));

    if (argc > 1 && strcmp(argv[1], "read") == 0) {
        char c;
        install(SIGALRM, on_alarm, 0);
        errno = 0;
        ssize_t n = read(0, &c, 1);
        printf("read without SA_RESTART: EINTR %s\n", yesno(n == -1 && errno == EINTR));
    }
    arm_real(0, 0);

    /* a program busy in its own code is interrupted too (no system call to return from) */
    install(SIGALRM, on_alarm, 0);
    int was = alarms;
    arm_real(20000, 0);
    while (alarms == was) { }
    arm_real(0, 0);
    printf("busy loop interrupted by SIGALRM yes\n");

    /* CPU-time timers: ITIMER_PROF and a CLOCK_PROCESS_CPUTIME_ID POSIX timer fire while the program computes */
    install(SIGPROF, on_rt, 0);
    rts = 0;
    struct itimerval prof = { { 0, 0 }, { 0, 30000 } };
    setitimer(ITIMER_PROF, &prof, NULL);
    while (rts == 0) { }
    printf("ITIMER_PROF fired during work %s\n", yesno(last.si_signo == SIGPROF));
    {
        struct sigevent cpu;
        memset(&cpu, 0, sizeof cpu);
        cpu.sigev_notify = SIGEV_SIGNAL;
        cpu.sigev_signo = SIGPROF;
        cpu.sigev_value.sival_int = 55;
        timer_t ct;
        timer_create(CLOCK_PROCESS_CPUTIME_ID, &cpu, &ct);
        struct itimerspec in30 = { { 0, 0 }, { 0, 30000000 } };
        rts = 0;
        timer_settime(ct, 0, &in30, NULL);
        while (rts == 0) { }
        printf("CPU-time POSIX timer fired during work %s value %d\n", yesno(last.si_code == SI_TIMER), last.si_value.sival_int);
        timer_delete(ct);
    }
    rts = 0;

    /* alarm's return value: whole seconds left, rounded */
    install(SIGALRM, on_alarm, 0);
    alarm(5);
    unsigned left = alarm(0);
    printf("alarm(5) then alarm(0) returns %u\n", left);
    struct itimerval cur;
    getitimer(ITIMER_REAL, &cur);
    printf("after alarm(0): disarmed %s\n", yesno(cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0));

    /* periodic ITIMER_REAL */
    before = alarms;
    arm_real(20000, 20000);
    getitimer(ITIMER_REAL, &cur);
    printf("periodic: interval 20 ms %s, value pending %s\n", yesno(cur.it_interval.tv_sec == 0 && cur.it_interval.tv_usec == 20000),
           yesno(cur.it_value.tv_sec == 0 && cur.it_value.tv_usec > 0 && cur.it_value.tv_usec <= 20000));
    wait_for(&alarms, before + 5, SIGALRM);
    arm_real(0, 0);
    printf("periodic: 5 ticks %s\n", yesno(alarms - before == 5));
    getitimer(ITIMER_REAL, &cur);
    printf("disarmed: %s\n", yesno(cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0 && cur.it_interval.tv_usec == 0));

    /* POSIX timer, SIGEV_SIGNAL */
    int sig = SIGRTMIN + 2;
    install(sig, on_rt, 0);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = sig;
    sev.sigev_value.sival_int = 777;
    timer_t t;
    printf("timer_create MONOTONIC %s\n", yesno(timer_create(CLOCK_MONOTONIC, &sev, &t) == 0));
    struct itimerspec its = { { 0, 15000000 }, { 0, 15000000 } }, got;
    timer_settime(t, 0, &its, NULL);
    timer_gettime(t, &got);
    printf("  gettime: interval 15 ms %s, value pending %s\n", yesno(got.it_interval.tv_sec == 0 && got.it_interval.tv_nsec == 15000000),
           yesno(got.it_value.tv_sec == 0 && got.it_value.tv_nsec > 0 && got.it_value.tv_nsec <= 15000000));
    wait_for(&rts, 3, sig);
    memset(&its, 0, sizeof its);
    timer_settime(t, 0, &its, NULL);
    printf("  3 signals %s: SI_TIMER %s value %d\n", yesno(rts >= 3), yesno(last.si_code == SI_TIMER), last.si_value.sival_int);
    int del = timer_delete(t);
    errno = 0;
    int again = timer_delete(t);
    printf("  timer_delete %s, again fails %s\n", yesno(del == 0), yesno(again != 0)); /* musl returns -EINVAL itself */
    rts = 0;

    /* absolute expiry on CLOCK_REALTIME */
    timer_create(CLOCK_REALTIME, &sev, &t);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    now.tv_nsec += 20000000;
    if (now.tv_nsec >= 1000000000) { now.tv_sec++; now.tv_nsec -= 1000000000; }
    struct itimerspec abs = { { 0, 0 }, now };
    timer_settime(t, TIMER_ABSTIME, &abs, NULL);
    wait_for(&rts, 1, sig);
    printf("absolute REALTIME timer fired %s\n", yesno(rts == 1));
    timer_delete(t);

#ifdef sigev_notify_thread_id
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = sig;
    sev.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
    sev.sigev_value.sival_int = 888;
    printf("SIGEV_THREAD_ID create %s\n", yesno(timer_create(CLOCK_MONOTONIC, &sev, &t) == 0));
    struct itimerspec once = { { 0, 0 }, { 0, 10000000 } };
    timer_settime(t, 0, &once, NULL);
    wait_for(&rts, 2, sig);
    printf("  fired %s value %d\n", yesno(rts == 2), last.si_value.sival_int);
    timer_delete(t);
#else
    printf("SIGEV_THREAD_ID create yes\n  fired yes value 888\n");
    rts++;
#endif

    /* SIGEV_NONE: counts down, never signals */
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_NONE;
    timer_create(CLOCK_MONOTONIC, &sev, &t);
    struct itimerspec longer = { { 0, 0 }, { 10, 0 } };
    timer_settime(t, 0, &longer, NULL);
    struct timespec nap = { 0, 20000000 };
    nanosleep(&nap, NULL);
    timer_gettime(t, &got);
    printf("SIGEV_NONE: counting down %s, no signal %s\n", yesno(got.it_value.tv_sec == 9 || (got.it_value.tv_sec < 10 && got.it_value.tv_nsec > 0)), yesno(rts == 2));
    timer_delete(t);
    printf("done\n");
    return 0;
}
