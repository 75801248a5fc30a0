/* sigdeliver: signals a program sends itself, delivered to handlers: raise/kill/tgkill/sigqueue with their siginfo
   (SI_TKILL, SI_USER, SI_QUEUE, si_pid, si_value); blocked signals stay pending (sigpending) and arrive when
   unblocked; standard signals coalesce, real-time ones queue (and arrive lowest first); the handler's mask (the signal
   itself unless SA_NODEFER, plus sa_mask) and the interrupted mask in its ucontext; SA_NODEFER re-entry;
   SA_RESETHAND; nested handlers; sigsuspend (EINTR, the caller's mask back after); sigaltstack with SA_ONSTACK
   (the handler's frame is on the alternate stack, SS_ONSTACK seen inside, EPERM to change it there); SIG_IGN drops
   a pending signal; last, the default action of SIGTERM ends the program (exit 143). Run: sigdeliver (no args). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static const char *yesno(int b) { return b ? "yes" : "no"; }

static volatile int count[65];
static volatile int order[16], norder;
static volatile siginfo_t last;
static volatile int mask_had_self, mask_had_usr2, uc_mask_had_hup;

static void install(int sig, void (*h)(int, siginfo_t *, void *), int flags, int masked)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = h;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    if (masked) sigaddset(&sa.sa_mask, masked);
    sigaction(sig, &sa, NULL);
}

static void on_sig(int sig, siginfo_t *si, void *ctx)
{
    ucontext_t *uc = ctx;
    sigset_t cur;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    mask_had_self = sigismember(&cur, sig);
    mask_had_usr2 = sigismember(&cur, SIGUSR2);
    uc_mask_had_hup = sigismember(&uc->uc_sigmask, SIGHUP);
    last = *si;
    count[sig]++;
    if (norder < 16) order[norder++] = sig;
}

static volatile int depth, maxdepth, calls;

static void on_nodefer(int sig, siginfo_t *si, void *ctx)
{
    (void)si; (void)ctx;
    depth++;
    calls++;
    if (depth > maxdepth) maxdepth = depth;
    if (calls < 3) raise(sig); /* with SA_NODEFER delivered at once, inside this handler; else after it */
    depth--;
}

static void on_outer(int sig, siginfo_t *si, void *ctx)
{
    (void)si; (void)ctx;
    order[norder++] = sig;
    raise(SIGUSR2); /* nested: runs before this handler goes on */
    order[norder++] = -sig;
}

static char altstack[65536] __attribute__((aligned(16)));
static volatile int on_alt, alt_flags, alt_eperm;

static void on_altsig(int sig, siginfo_t *si, void *ctx)
{
    (void)sig; (void)si; (void)ctx;
    char here;
    on_alt = (uintptr_t)&here > (uintptr_t)altstack && (uintptr_t)&here < (uintptr_t)altstack + sizeof altstack;
    stack_t now;
    sigaltstack(NULL, &now);
    alt_flags = now.ss_flags;
    stack_t other = { .ss_sp = altstack, .ss_size = 8192, .ss_flags = 0 };
    alt_eperm = sigaltstack(&other, NULL) == -1 && errno == EPERM;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    pid_t pid = getpid();

    install(SIGUSR1, on_sig, 0, SIGUSR2);
    raise(SIGUSR1);
    printf("raise: count %d signo %s code SI_TKILL %s pid %s\n", count[SIGUSR1], yesno(last.si_signo == SIGUSR1), yesno(last.si_code == SI_TKILL), yesno(last.si_pid == pid));
    printf("  in handler: self blocked %s, sa_mask USR2 blocked %s\n", yesno(mask_had_self), yesno(mask_had_usr2));

    kill(pid, SIGUSR1);
    printf("kill: count %d code SI_USER %s pid %s\n", count[SIGUSR1], yesno(last.si_code == SI_USER), yesno(last.si_pid == pid));

    syscall(SYS_tgkill, pid, (pid_t)syscall(SYS_gettid), SIGUSR1);
    printf("tgkill: count %d code SI_TKILL %s\n", count[SIGUSR1], yesno(last.si_code == SI_TKILL));

    union sigval v = { .sival_int = 1234 };
    sigqueue(pid, SIGUSR1, v);
    printf("sigqueue: count %d code SI_QUEUE %s value %d\n", count[SIGUSR1], yesno(last.si_code == SI_QUEUE), last.si_value.sival_int);

    /* blocked: pending until unblocked; the ucontext's mask is the one interrupted */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &old);
    raise(SIGUSR1);
    raise(SIGUSR1);
    sigset_t pend;
    sigpending(&pend);
    printf("blocked: count %d pending USR1 %s\n", count[SIGUSR1], yesno(sigismember(&pend, SIGUSR1)));
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    sigpending(&pend);
    printf("unblocked: count %d (standard signals coalesce) pending %s, ucontext mask had HUP %s\n", count[SIGUSR1], yesno(sigismember(&pend, SIGUSR1)), yesno(uc_mask_had_hup));
    sigprocmask(SIG_SETMASK, &old, NULL);

    /* real-time signals queue, lowest number first */
    int r1 = SIGRTMIN + 1, r3 = SIGRTMIN + 3;
    install(r1, on_sig, 0, 0);
    install(r3, on_sig, 0, 0);
    sigemptyset(&set);
    sigaddset(&set, r1);
    sigaddset(&set, r3);
    sigprocmask(SIG_BLOCK, &set, NULL);
    norder = 0;
    for (int i = 0; i < 3; i++) {
        v.sival_int = 100 + i;
        sigqueue(pid, r3, v);
        v.sival_int = 200 + i;
        sigqueue(pid, r1, v);
    }
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    printf("rt queued: r1 %d r3 %d order", count[r1], count[r3]);
    for (int i = 0; i < norder; i++) printf(" %s", order[i] == r1 ? "r1" : "r3");
    printf(", last value %d\n", last.si_value.sival_int);

    /* SA_NODEFER: the handler interrupts itself */
    install(SIGUSR2, on_nodefer, SA_NODEFER, 0);
    raise(SIGUSR2);
    printf("SA_NODEFER: depth reached %d in %d calls\n", maxdepth, calls);
    maxdepth = calls = 0;
    install(SIGUSR2, on_nodefer, 0, 0);
    raise(SIGUSR2);
    printf("without SA_NODEFER: depth reached %d in %d calls\n", maxdepth, calls);

    /* nested delivery */
    install(SIGHUP, on_outer, 0, 0);
    install(SIGUSR2, on_sig, 0, 0);
    norder = 0;
    raise(SIGHUP);
    printf("nested:");
    for (int i = 0; i < norder; i++) printf(" %d", order[i]);
    printf("\n");

    /* SA_RESETHAND */
    install(SIGWINCH, on_sig, SA_RESETHAND, 0);
    raise(SIGWINCH);
    struct sigaction now;
    sigaction(SIGWINCH, NULL, &now);
    printf("SA_RESETHAND: count %d, now SIG_DFL %s, SA_SIGINFO kept %s\n", count[SIGWINCH], yesno(now.sa_handler == SIG_DFL), yesno(now.sa_flags & SA_SIGINFO));
    raise(SIGWINCH); /* default: ignored */
    printf("  second WINCH ignored, count %d\n", count[SIGWINCH]);

    /* sigsuspend */
    install(SIGUSR1, on_sig, 0, 0);
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    raise(SIGUSR1);
    int before = count[SIGUSR1];
    sigset_t none;
    sigemptyset(&none);
    errno = 0;
    int rc = sigsuspend(&none);
    int e = errno;
    sigset_t cur;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    printf("sigsuspend: rc -1 %s EINTR %s handler ran %s, USR1 blocked again %s\n", yesno(rc == -1), yesno(e == EINTR), yesno(count[SIGUSR1] == before + 1), yesno(sigismember(&cur, SIGUSR1)));
    sigprocmask(SIG_UNBLOCK, &set, NULL);

    /* SIG_IGN discards a pending signal */
    sigprocmask(SIG_BLOCK, &set, NULL);
    raise(SIGUSR1);
    signal(SIGUSR1, SIG_IGN);
    sigpending(&pend);
    printf("SIG_IGN: pending USR1 dropped %s\n", yesno(!sigismember(&pend, SIGUSR1)));
    sigprocmask(SIG_UNBLOCK, &set, NULL);

    /* sigaltstack + SA_ONSTACK */
    stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0 }, oss;
    printf("sigaltstack set %s\n", yesno(sigaltstack(&ss, &oss) == 0));
    printf("  previous disabled %s\n", yesno(oss.ss_flags == SS_DISABLE));
    stack_t tiny = { .ss_sp = altstack, .ss_size = 512, .ss_flags = 0 };
    errno = 0;
    printf("  too small ENOMEM %s\n", yesno(sigaltstack(&tiny, NULL) == -1 && errno == ENOMEM));
    install(SIGUSR2, on_altsig, SA_ONSTACK, 0);
    raise(SIGUSR2);
    printf("SA_ONSTACK: on the alternate stack %s, SS_ONSTACK inside %s, EPERM there %s\n", yesno(on_alt), yesno(alt_flags == SS_ONSTACK), yesno(alt_eperm));
    sigaltstack(NULL, &oss);
    printf("  after: flags 0 %s size kept %s\n", yesno(oss.ss_flags == 0), yesno(oss.ss_size == sizeof altstack));
    install(SIGUSR2, on_altsig, 0, 0);
    raise(SIGUSR2);
    printf("without SA_ONSTACK: on the alternate stack %s\n", yesno(on_alt));
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, NULL);
    sigaltstack(NULL, &oss);
    printf("disabled %s\n", yesno(oss.ss_flags == SS_DISABLE));

    printf("SIGTERM now\n");
    raise(SIGTERM);
    printf("unreachable\n");
    return 0;
}
