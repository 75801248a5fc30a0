/* signals: sigaction/signal/sigprocmask/sigpending set and read back (no signal is delivered); EINVAL for SIGKILL, SIGKILL never blockable. Run: signals (no args, no stdin). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static void on_usr1(int sig) { (void)sig; }
static void on_info(int sig, siginfo_t *si, void *uc) { (void)sig; (void)si; (void)uc; }

static const char *yesno(int b) { return b ? "yes" : "no"; }

int main(void)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    sigaddset(&sa.sa_mask, SIGALRM);
    printf("sigaction USR1 set %s\n", yesno(sigaction(SIGUSR1, &sa, NULL) == 0));
    memset(&old, 0, sizeof old);
    printf("sigaction USR1 read %s\n", yesno(sigaction(SIGUSR1, NULL, &old) == 0));
    printf("  handler same %s\n", yesno(old.sa_handler == on_usr1));
    printf("  SA_RESTART %s SA_SIGINFO %s SA_ONSTACK %s\n", yesno(old.sa_flags & SA_RESTART), yesno(old.sa_flags & SA_SIGINFO), yesno(old.sa_flags & SA_ONSTACK));
    printf("  mask USR2 %s ALRM %s INT %s\n", yesno(sigismember(&old.sa_mask, SIGUSR2)), yesno(sigismember(&old.sa_mask, SIGALRM)), yesno(sigismember(&old.sa_mask, SIGINT)));

    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_info;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    printf("sigaction USR2 SA_SIGINFO set %s\n", yesno(sigaction(SIGUSR2, &sa, &old) == 0));
    printf("  previous USR2 was SIG_DFL %s\n", yesno(old.sa_handler == SIG_DFL));
    sigaction(SIGUSR2, NULL, &old);
    printf("  sigaction same %s SA_SIGINFO %s SA_NODEFER %s\n", yesno(old.sa_sigaction == on_info), yesno(old.sa_flags & SA_SIGINFO), yesno(old.sa_flags & SA_NODEFER));

    /* replace USR1 and get the previous one back */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGUSR1, &sa, &old);
    printf("USR1 previous handler was on_usr1 %s\n", yesno(old.sa_handler == on_usr1));
    sigaction(SIGUSR1, NULL, &old);
    printf("USR1 now SIG_IGN %s\n", yesno(old.sa_handler == SIG_IGN));

    void (*prev)(int) = signal(SIGTERM, SIG_IGN);
    printf("signal(TERM, IGN) ok %s\n", yesno(prev != SIG_ERR));
    prev = signal(SIGTERM, SIG_DFL);
    printf("signal(TERM, DFL) returns SIG_IGN %s\n", yesno(prev == SIG_IGN));

    errno = 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    int rc = sigaction(SIGKILL, &sa, NULL);
    int e = errno;
    printf("sigaction(KILL) fails EINVAL %s\n", yesno(rc == -1 && e == EINVAL));
    errno = 0;
    rc = sigaction(SIGSTOP, &sa, NULL);
    e = errno;
    printf("sigaction(STOP) fails EINVAL %s\n", yesno(rc == -1 && e == EINVAL));
    errno = 0;
    rc = sigaction(65, &sa, NULL);
    e = errno;
    printf("sigaction(65) fails EINVAL %s\n", yesno(rc == -1 && e == EINVAL));

    /* the blocked mask */
    sigset_t set, cur;
    sigemptyset(&set);
    sigprocmask(SIG_SETMASK, &set, NULL);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGKILL);
    sigaddset(&set, SIGRTMIN + 2);
    printf("sigprocmask BLOCK %s\n", yesno(sigprocmask(SIG_BLOCK, &set, NULL) == 0));
    sigprocmask(SIG_SETMASK, NULL, &cur);
    printf("  blocked USR2 %s HUP %s RTMIN+2 %s USR1 %s KILL %s\n", yesno(sigismember(&cur, SIGUSR2)), yesno(sigismember(&cur, SIGHUP)),
           yesno(sigismember(&cur, SIGRTMIN + 2)), yesno(sigismember(&cur, SIGUSR1)), yesno(sigismember(&cur, SIGKILL)));
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigset_t before;
    sigprocmask(SIG_UNBLOCK, &set, &before);
    printf("  old mask returned by UNBLOCK has HUP %s\n", yesno(sigismember(&before, SIGHUP)));
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("  after UNBLOCK HUP: HUP %s USR2 %s\n", yesno(sigismember(&cur, SIGHUP)), yesno(sigismember(&cur, SIGUSR2)));
    errno = 0;
    rc = sigprocmask(12345, &set, NULL);
    e = errno;
    printf("  bad how fails EINVAL %s\n", yesno(rc == -1 && e == EINVAL));

    sigset_t pend;
    sigemptyset(&pend);
    printf("sigpending ok %s, USR2 pending %s\n", yesno(sigpending(&pend) == 0), yesno(sigismember(&pend, SIGUSR2)));

    sigemptyset(&set);
    sigprocmask(SIG_SETMASK, &set, NULL);
    sigprocmask(SIG_SETMASK, NULL, &cur);
    printf("mask cleared USR2 %s\n", yesno(sigismember(&cur, SIGUSR2)));
    return 0;
}
