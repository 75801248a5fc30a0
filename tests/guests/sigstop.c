/* sigstop: stops itself with kill(getpid(), SIGSTOP), then raise(SIGTSTP) (blocked around the tgkill by glibc, so delivered on unblock), printing a line after each continue; an ignored SIGTSTP does not stop. In a domain each stop pauses it until unpaused. Run: sigstop (not natively: nothing would continue it).
   sigstop sleep: a timer sends SIGSTOP 50 ms into a 300 ms nanosleep; once continued the sleep goes on for what was
   left (restart_syscall) and returns 0, at least 300 ms after it began. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int stop_during_sleep(void)
{
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGSTOP;
    timer_t t;
    timer_create(CLOCK_MONOTONIC, &sev, &t);
    struct itimerspec in50 = { { 0, 0 }, { 0, 50000000 } };
    printf("sleeping\n");
    fflush(stdout);
    long long start = now_ns();
    timer_settime(t, 0, &in50, NULL);
    struct timespec req = { 0, 300000000 };
    int rc = nanosleep(&req, NULL);
    long long slept = now_ns() - start;
    printf("nanosleep returned %d, slept at least 300 ms %s\n", rc, slept >= 300000000LL ? "yes" : "no");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "sleep") == 0) return stop_during_sleep();
    printf("before the stop\n");
    fflush(stdout);
    int rc = kill(getpid(), SIGSTOP);
    printf("continued after SIGSTOP, kill returned %d\n", rc);
    fflush(stdout);
    rc = raise(SIGTSTP);
    printf("continued after SIGTSTP, raise returned %d\n", rc);
    fflush(stdout);
    signal(SIGTSTP, SIG_IGN);
    rc = raise(SIGTSTP);
    printf("an ignored SIGTSTP does not stop, raise returned %d\n", rc);
    return 0;
}
