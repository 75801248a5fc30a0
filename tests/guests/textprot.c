/* textprot: the program image keeps each PT_LOAD segment's protection, as Linux maps it (issue 11, fuzzer finding 3).
   (a) system calls given a pointer into the text (uname, clock_gettime, read from a pipe, rt_sigprocmask's old set,
       getrandom) fail with EFAULT and leave the text as it was; the pipe keeps its bytes;
   (b) a store to the text, to the read-only data, and a call into the data, the .bss, the heap and the stack each end
       in SIGSEGV with si_code SEGV_ACCERR and si_addr at the access; a store to RELRO data faults where the libc
       mprotects RELRO read-only (glibc), not where it does not (musl);
   (c) a text page mprotected read-write is written (a JIT's "mov $N, %eax; ret"), made read-execute again and run;
       then a store to it faults again;
   (d) the image's lines of /proc/self/maps (the program's own, and the unnamed .bss line right after them) reduced to
       their permissions.
   With ROUNDS > 1 it does (a)-(c) ROUNDS times, SLEEP_MS apart (a checkpoint chain in between must keep it all), each
   line of round N starting "rN ", then (d).
   Prints facts only. Run: textprot [ROUNDS [SLEEP_MS]]. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* One whole page of text of our own: "mov $1, %eax; ret", then int3 to the page's end. */
__asm__(".text\n.balign 4096\n.globl jitpage\njitpage:\n movl $1, %eax\n ret\n .fill 4090, 1, 0xcc\n");
extern unsigned char jitpage[];

static const char rodata[64] = "read-only data";
static unsigned char data[64] = {0xc3};       /* ret, in writable data */
/* In the RELRO part of the data segment: glibc mprotects it read-only at start (a store faults), musl does not. */
static unsigned char relro[64] __attribute__((section(".data.rel.ro"), used)) = {1};
static unsigned char bss[8192];
static sigjmp_buf jump;
static int round_no; /* with ROUNDS > 1 each line of a round starts "rN " (lines are unique: a failover's check needs it) */
#define say(...) ((void)(round_no ? printf("r%d ", round_no) : 0), printf(__VA_ARGS__))
static volatile int code;
static volatile uintptr_t addr;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)uc;
    code = si->si_code;
    addr = (uintptr_t)si->si_addr;
    siglongjmp(jump, 1);
}

static const char *err(long r)
{
    if (r >= 0) return "ok";
    switch (errno) {
    case EFAULT: return "EFAULT";
    case EINVAL: return "EINVAL";
    default: return "other";
    }
}

static unsigned char *text_target(void) { return (unsigned char *)((uintptr_t)&err & ~63UL); }

static void syscalls_into_text(void)
{
    unsigned char *t = text_target();
    unsigned char before[512];
    memcpy(before, t, sizeof before);
    say("uname(text): %s\n", err(syscall(SYS_uname, t)));
    say("clock_gettime(text): %s\n", err(syscall(SYS_clock_gettime, CLOCK_MONOTONIC, t)));
    say("gettimeofday(text): %s\n", err(syscall(SYS_gettimeofday, t, 0)));
    sigset_t set;
    sigemptyset(&set);
    say("rt_sigprocmask(old set in text): %s\n", err(syscall(SYS_rt_sigprocmask, SIG_BLOCK, &set, t, 8)));
    say("getrandom(text): %s\n", err(syscall(SYS_getrandom, t, 16, 1)));
    say("uname(rodata): %s\n", err(syscall(SYS_uname, (void *)rodata)));
    int p[2];
    if (pipe(p) != 0) { perror("pipe"); exit(1); }
    (void)!write(p[1], "pipe bytes", 10);
    say("read(pipe, text): %s\n", err(syscall(SYS_read, p[0], t, 10)));
    char back[11] = {0};
    say("the pipe keeps its bytes: %s\n", read(p[0], back, 10) == 10 && strcmp(back, "pipe bytes") == 0 ? "yes" : "no");
    close(p[0]);
    close(p[1]);
    say("text unchanged: %s\n", memcmp(before, t, sizeof before) == 0 ? "yes" : "no");
    say("write(fd, text) reads it: %s\n", write(open("/dev/null", O_WRONLY), t, 64) == 64 ? "yes" : "no");
}

/* Runs probe(at) under a SIGSEGV handler: "SIGSEGV code N at-address yes|no", or "no fault". */
static void fault(const char *what, void (*probe)(volatile unsigned char *), volatile unsigned char *at)
{
    code = 0;
    addr = 0;
    if (sigsetjmp(jump, 1) == 0) {
        probe(at);
        say("%s: no fault\n", what);
    } else
        say("%s: SIGSEGV %s, si_addr at the access: %s\n", what,
               code == SEGV_ACCERR ? "SEGV_ACCERR" : code == SEGV_MAPERR ? "SEGV_MAPERR" : "other", addr == (uintptr_t)at ? "yes" : "no");
}

static void store(volatile unsigned char *at) { *at = 0x90; }
static void call(volatile unsigned char *at) { ((void (*)(void))(uintptr_t)at)(); }

static void faults(void)
{
    fault("store to text", store, text_target() + 3);
    fault("store to rodata", store, (volatile unsigned char *)rodata + 5);
    fault("store to relro", store, relro + 7);
    data[0] = 0xc3;
    fault("call into data", call, data);
    bss[4096] = 0xc3;
    fault("call into bss", call, bss + 4096);
    unsigned char *heap = malloc(64);
    heap[0] = 0xc3;
    fault("call into the heap", call, heap);
    free(heap);
    volatile unsigned char stack[16] = {0xc3};
    fault("call into the stack", call, stack);
}

static void jit(int value)
{
    int (*fn)(void) = (int (*)(void))(uintptr_t)jitpage;
    say("jit page before: %d\n", ((int (*volatile)(void))fn)() != 0 ? 1 : 0);
    say("mprotect rw: %s\n", err(mprotect(jitpage, 4096, PROT_READ | PROT_WRITE)));
    unsigned char code_[6] = {0xb8, (unsigned char)value, 0, 0, 0, 0xc3};
    memcpy(jitpage, code_, sizeof code_);
    say("mprotect rx: %s\n", err(mprotect(jitpage, 4096, PROT_READ | PROT_EXEC)));
    say("jit page returns %d\n", ((int (*volatile)(void))fn)());
    fault("store to the jit page", store, jitpage + 8);
}

static void maps(void)
{
    static char text[1 << 16];
    int fd = open("/proc/self/maps", O_RDONLY), len = 0, n;
    if (fd < 0) { printf("no /proc/self/maps\n"); return; }
    while ((n = read(fd, text + len, sizeof text - 1 - len)) > 0) len += n;
    close(fd);
    /* The program's own path: the name on the line that holds main. */
    char self[512] = "";
    for (char *line = text; *line;) {
        char *end = strchr(line, '\n');
        unsigned long lo, hi;
        char *name = strchr(line, '/');
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && (uintptr_t)&maps >= lo && (uintptr_t)&maps < hi && name && (!end || name < end)) {
            int l = end ? (int)(end - name) : (int)strlen(name);
            snprintf(self, sizeof self, "%.*s", l, name);
        }
        if (!end) break;
        line = end + 1;
    }
    printf("image:");
    unsigned long last = 0;
    for (char *line = text; *line;) {
        char *end = strchr(line, '\n');
        if (end) *end = 0;
        unsigned long lo, hi;
        char perms[5];
        char *name = strchr(line, '/');
        char *bracket = strchr(line, '[');
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3) {
            if (name && strcmp(name, self) == 0) { printf(" %s", perms); last = hi; }
            else if (!name && !bracket && last != 0 && lo == last) { printf(" %s(bss)", perms); last = 0; }
        }
        if (!end) break;
        line = end + 1;
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 1;
    int sleep_ms = argc > 2 ? atoi(argv[2]) : 0;
    setvbuf(stdout, 0, _IOLBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, 0);
    for (int r = 1; r <= rounds; r++) {
        round_no = rounds > 1 ? r : 0;
        say("round %d\n", r);
        syscalls_into_text();
        faults();
        jit(40 + r);
        if (sleep_ms > 0) {
            struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
            nanosleep(&ts, 0);
        }
    }
    round_no = 0;
    maps();
    return 0;
}
