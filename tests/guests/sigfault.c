/* sigfault: synchronous signals caught by handlers: SIGSEGV for a NULL read and writes to bad addresses (si_signo,
   si_code, si_addr, the faulting rip in the ucontext) recovered with siglongjmp; a fault fixed by changing a register
   in the ucontext and returning (the instruction runs again and succeeds); SIGILL (ud2) skipped by advancing rip;
   SIGFPE (divide by zero, FPE_INTDIV); SIGTRAP (int3, SI_KERNEL); a non-canonical address (SIGSEGV, SI_KERNEL, si_addr 0);
   SA_RESETHAND; last, a fault while SIGSEGV is blocked kills (exit 139) although a handler is set.
   Run: sigfault, or sigfault badstack: a handled signal whose frame cannot be written (rsp invalid) ends the program
   with SIGSEGV (139). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <execinfo.h>
#endif

static sigjmp_buf jb;
static volatile siginfo_t last;
static volatile uintptr_t last_rip;
static volatile int hits;

static const char *yesno(int b) { return b ? "yes" : "no"; }

static volatile int unwound = -1;

__attribute__((noinline)) int faulting_function(volatile int *p)
{
    int v = *p;
    __asm__ volatile("" ::: "memory");
    return v + 1;
}
__attribute__((noinline)) void after_faulting_function(void) { __asm__ volatile(""); }

/* Unwinds from inside the handler: the unwinder must step over the signal frame (it recognises the restorer and
   reads the ucontext after it) into the function that faulted. */
static void check_unwind(void)
{
#ifdef __GLIBC__
    void *frames[32];
    int n = backtrace(frames, 32);
    unwound = 0;
    for (int i = 0; i < n; i++)
        if ((uintptr_t)frames[i] >= (uintptr_t)faulting_function && (uintptr_t)frames[i] < (uintptr_t)after_faulting_function) unwound = 1;
#else
    unwound = 1; /* musl has no backtrace() */
#endif
}

static void on_fault_jump(int sig, siginfo_t *si, void *ctx)
{
    if (unwound < 0) check_unwind();
    ucontext_t *uc = ctx;
    last = *si;
    last_rip = uc->uc_mcontext.gregs[REG_RIP];
    hits++;
    (void)sig;
    siglongjmp(jb, 1);
}

static int fixed_value = 4242;

static void on_fault_fix(int sig, siginfo_t *si, void *ctx)
{
    ucontext_t *uc = ctx;
    (void)sig;
    last = *si;
    hits++;
    uc->uc_mcontext.gregs[REG_RAX] = (greg_t)&fixed_value; /* the load runs again through a good pointer */
}

extern char ud2_at[], int3_after[];

static void on_ill(int sig, siginfo_t *si, void *ctx)
{
    ucontext_t *uc = ctx;
    (void)sig;
    last = *si;
    last_rip = uc->uc_mcontext.gregs[REG_RIP];
    hits++;
    uc->uc_mcontext.gregs[REG_RIP] += 2; /* skip the ud2 */
}

static void on_trap(int sig, siginfo_t *si, void *ctx)
{
    ucontext_t *uc = ctx;
    (void)sig;
    last = *si;
    last_rip = uc->uc_mcontext.gregs[REG_RIP];
    hits++;
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

static void report(const char *what, int signo, int code, uintptr_t addr)
{
    printf("%s: signo %s code %s addr %s\n", what, yesno(last.si_signo == signo), yesno(last.si_code == code),
           yesno((uintptr_t)last.si_addr == addr));
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 1 && strcmp(argv[1], "badstack") == 0) {
        /* a signal whose frame cannot be written (rsp points nowhere): SIGSEGV, and the program dies of it */
        install(SIGUSR1, on_trap, 0);
        printf("signal with a bad stack\n");
        long pid = getpid();
        __asm__ volatile("mov %%rsp, %%r12\n mov $0x10000, %%rsp\n syscall\n mov %%r12, %%rsp"
                         : : "a"((long)SYS_kill), "D"(pid), "S"((long)SIGUSR1) : "rcx", "r11", "r12", "memory");
        printf("unreachable\n");
        return 0;
    }
    install(SIGSEGV, on_fault_jump, 0);

    if (sigsetjmp(jb, 1) == 0) printf("unreachable %d\n", faulting_function(NULL));
    report("null read", SIGSEGV, SEGV_MAPERR, 0);
    printf("backtrace from the handler reaches the faulting function %s\n", yesno(unwound == 1));

    if (sigsetjmp(jb, 1) == 0) {
        *(volatile int *)0x10 = 1;
        printf("unreachable\n");
    }
    report("write 0x10", SIGSEGV, SEGV_MAPERR, 0x10);

    uintptr_t far = 0x500000000000ULL + 0x1238;
    if (sigsetjmp(jb, 1) == 0) {
        *(volatile long *)far = 7;
        printf("unreachable\n");
    }
    report("write far", SIGSEGV, SEGV_MAPERR, far);

    /* the mask is back after siglongjmp (savesigs): SIGSEGV is not left blocked */
    sigset_t cur;
    sigprocmask(SIG_SETMASK, NULL, &cur);
    printf("SIGSEGV blocked after siglongjmp %s\n", yesno(sigismember(&cur, SIGSEGV)));

    if (sigsetjmp(jb, 1) == 0) {
        uintptr_t noncanon = 0x8000000000001000ULL;
        *(volatile long *)noncanon = 7;
        printf("unreachable\n");
    }
    printf("non-canonical: signo %s code SI_KERNEL %s addr 0 %s\n", yesno(last.si_signo == SIGSEGV), yesno(last.si_code == SI_KERNEL), yesno(last.si_addr == NULL));

    /* a fault fixed in the ucontext: rax is the pointer the faulting load uses */
    install(SIGSEGV, on_fault_fix, 0);
    int got;
    hits = 0;
    __asm__ volatile("movl (%%rax), %0" : "=r"(got) : "a"((uintptr_t)8) : "memory");
    printf("fixed load got %d after %d fault(s), addr 8 %s\n", got, hits, yesno((uintptr_t)last.si_addr == 8));

    /* SIGILL: skip the instruction */
    install(SIGILL, on_ill, 0);
    hits = 0;
    __asm__ volatile(".globl ud2_at\nud2_at: ud2" ::: "memory");
    printf("ud2: signo %s code ILL_ILLOPN %s addr is rip %s rip at ud2 %s hits %d\n", yesno(last.si_signo == SIGILL),
           yesno(last.si_code == ILL_ILLOPN), yesno((uintptr_t)last.si_addr == (uintptr_t)ud2_at), yesno(last_rip == (uintptr_t)ud2_at), hits);

    /* SIGFPE */
    install(SIGFPE, on_fault_jump, 0);
    if (sigsetjmp(jb, 1) == 0) {
        volatile int zero = 0, one = 1;
        printf("unreachable %d\n", one / zero);
    }
    printf("divide: signo %s code FPE_INTDIV %s\n", yesno(last.si_signo == SIGFPE), yesno(last.si_code == FPE_INTDIV));

    /* SIGTRAP: int3 reports rip after it */
    install(SIGTRAP, on_trap, 0);
    __asm__ volatile("int3\n.globl int3_after\nint3_after:" ::: "memory");
    printf("int3: signo %s code SI_KERNEL %s rip after int3 %s\n", yesno(last.si_signo == SIGTRAP), yesno(last.si_code == SI_KERNEL),
           yesno(last_rip == (uintptr_t)int3_after));

    /* SA_RESETHAND: the handler runs once, then SIGSEGV has its default action again */
    install(SIGSEGV, on_fault_jump, SA_RESETHAND);
    hits = 0;
    if (sigsetjmp(jb, 1) == 0) *(volatile int *)0x30 = 1;
    struct sigaction now;
    sigaction(SIGSEGV, NULL, &now);
    printf("SA_RESETHAND: handler ran %d, now SIG_DFL %s\n", hits, yesno(now.sa_handler == SIG_DFL));

    /* a fault whose signal is blocked: Linux resets the handler and the default action ends the program */
    install(SIGSEGV, on_fault_jump, 0);
    sigset_t segv;
    sigemptyset(&segv);
    sigaddset(&segv, SIGSEGV);
    sigprocmask(SIG_BLOCK, &segv, NULL);
    printf("fault with SIGSEGV blocked now\n");
    *(volatile int *)0x40 = 1;
    printf("unreachable\n");
    return 0;
}
