/* A syscall fuzzer (issue 11, in the spirit of trinity): THREADS threads each make CALLS system calls chosen by a
   seeded generator, with random and adversarial arguments: bad pointers (NULL, unmapped, kernel-range, misaligned,
   a buffer's last byte before a guard page, read-only text), huge and negative lengths, odd file descriptors,
   overlapping buffers, unknown flags and syscall numbers. It must never crash, hang or corrupt the VMM; every call must
   return a Linux-like result (>= 0, or -errno with errno in 1..4095).
   What keeps the fuzzer itself alive (these are rules for the generator, not holes in the fuzzing): no call that ends
   or replaces the process or a thread (exit, execve, clone, fork, arch_prctl, set_tid_address), memory calls only on
   a scratch arena or on addresses no mapping has, no handler or mask for the signals the fuzzer needs, fds 0-2 never
   fuzzed, every fd it makes non-blocking and every timeout short (so no call can block for long).
   NEVER RUN IT NATIVELY: it truncates, renames, unlinks and chmods the paths it names (/dev/null among them). In a
   domain those calls meet the VMM's own view of files (host paths are read-only there), which is what is fuzzed; it
   refuses to start unless SYSFUZZ_IN_DOMAIN=1 is in its environment.
   FINDING (2026-11-28, open): the VMM treats the whole program image as writable (AddressSpace.ProtectionAt: image to
   brk is rwx), so a system call given a pointer into the program's text writes there instead of failing with EFAULT
   (rt_sigprocmask/clock_gettime/uname/read into main's code all succeed and uname corrupts it). Pointers into the text
   are therefore only generated with SYSFUZZ_TEXT=1 until the image keeps its segments' protections.
   Prints at the end one line: "sysfuzz done CALLS calls, OK ok, ERR errors, BAD non-linux" (exit status 1 if BAD > 0).
   Usage: sysfuzz SEED CALLS THREADS */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARENA_PAGES 64
#define ARENA (ARENA_PAGES * 4096UL)

static int trace; /* SYSFUZZ_TRACE=1: each call on stderr before it is made */
static int text;  /* SYSFUZZ_TEXT=1: pointers into the program's read-only text too */

struct fuzzer {
    uint64_t rng;
    long calls, ok, err, bad;
    unsigned char *arena;   /* ARENA bytes of scratch, then one guard page (PROT_NONE) */
    int fds[32];
    int nfds;
};

static uint64_t next(struct fuzzer *f) {
    uint64_t x = f->rng;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    return f->rng = x;
}
static uint64_t below(struct fuzzer *f, uint64_t n) { return n ? next(f) % n : 0; }

/* An address: mostly inside the arena (so the call can really read or write it), else something adversarial. */
static uint64_t ptr(struct fuzzer *f) {
    switch (below(f, 12)) {
    case 0: return 0;
    case 1: return 1;
    case 2: return (uint64_t)f->arena + ARENA - 1;          /* the last byte before the guard page */
    case 3: return (uint64_t)f->arena + ARENA;              /* the guard page */
    case 4: return 0xffff800000000000ULL + below(f, 1 << 20) * 8; /* kernel range */
    case 5: return 0x00007ffffffff000ULL;                   /* the top of user space, nothing mapped */
    case 6: return text ? (uint64_t)&ptr : (uint64_t)f->arena; /* read-only text (SYSFUZZ_TEXT=1; see the note at the top) */
    case 7: return next(f);                                 /* anything */
    case 8: return (uint64_t)f->arena + below(f, ARENA) ;   /* misaligned inside */
    default: return (uint64_t)f->arena + below(f, ARENA_PAGES) * 4096;
    }
}

/* A page-aligned address for memory calls: the arena's pages, or addresses no mapping of ours has. */
static uint64_t mem_addr(struct fuzzer *f) {
    switch (below(f, 6)) {
    case 0: return 0;
    case 1: return 0xffff800000000000ULL;
    case 2: return 0x00007ffffffff000ULL;
    case 3: return (uint64_t)f->arena + below(f, ARENA_PAGES) * 4096 + (below(f, 4) == 0 ? 1 : 0);
    default: return (uint64_t)f->arena + below(f, ARENA_PAGES) * 4096;
    }
}

/* A pointer no mapping of ours has (or NULL): for arguments the kernel would read a timeout or a length from. */
static uint64_t bad_ptr(struct fuzzer *f) {
    switch (below(f, 3)) {
    case 0: return 0;
    case 1: return 0xffff800000000000ULL;
    default: return (uint64_t)f->arena + ARENA; /* the guard page */
    }
}

/* Clamps a length so that [addr, addr+len) stays inside the arena and its guard page when addr is inside them. */
static uint64_t clamp(struct fuzzer *f, uint64_t addr, uint64_t n) {
    uint64_t lo = (uint64_t)f->arena, hi = lo + ARENA + 4096;
    if (addr >= lo && addr < hi && n > hi - addr) return hi - addr;
    return n;
}

static uint64_t len(struct fuzzer *f) {
    switch (below(f, 10)) {
    case 0: return 0;
    case 1: return 1;
    case 2: return 4096;
    case 3: return ARENA + 4096;       /* runs into the guard page */
    case 4: return 1ULL << 40;
    case 5: return (uint64_t)-1;
    case 6: return 0x7fffffff;
    case 7: return next(f);
    default: return below(f, 8192);
    }
}

static uint64_t fd(struct fuzzer *f) {
    switch (below(f, 8)) {
    case 0: return (uint64_t)-1;
    case 1: return 3 + below(f, 60);
    case 2: return 1 << 20;
    case 3: return next(f);
    default: return f->nfds ? (uint64_t)f->fds[below(f, f->nfds)] : 3 + below(f, 20);
    }
}

static uint64_t flags(struct fuzzer *f) {
    switch (below(f, 4)) {
    case 0: return 0;
    case 1: return next(f);
    default: return 1ULL << below(f, 32) | (below(f, 2) ? 1ULL << below(f, 32) : 0);
    }
}

static uint64_t any(struct fuzzer *f) {
    switch (below(f, 5)) {
    case 0: return ptr(f);
    case 1: return len(f);
    case 2: return fd(f);
    case 3: return flags(f);
    default: return below(f, 64);
    }
}

/* A path: real names, long and unterminated ones, or a bad pointer. */
static uint64_t path(struct fuzzer *f) {
    static const char *names[] = {"/tmp/sysfuzz", "/tmp", "/", "", ".", "..", "/proc/self/maps", "/proc/self/status",
                                  "/nonexistent/x", "/dev/null", "/dev/zero", "/etc/passwd", "/tmp/sysfuzz/../sysfuzz2"};
    unsigned char *p = f->arena + below(f, ARENA_PAGES - 2) * 4096;
    switch (below(f, 6)) {
    case 0: return ptr(f);
    case 1: memset(p, 'a', 8191); p[8191] = 0; return (uint64_t)p;            /* longer than PATH_MAX */
    case 2: memset(f->arena + ARENA - 16, 'b', 16); return (uint64_t)f->arena + ARENA - 16; /* unterminated */
    default: strcpy((char *)p, names[below(f, sizeof names / sizeof *names)]); return (uint64_t)p;
    }
}

/* A short timeout (struct timespec or timeval: 0 s and under 1 ms) in the arena. */
static uint64_t timeout(struct fuzzer *f) {
    int64_t *t = (int64_t *)(f->arena + below(f, ARENA_PAGES) * 4096 + 64);
    t[0] = 0;
    t[1] = (int64_t)below(f, 1000);
    return (uint64_t)t;
}

static void keep(struct fuzzer *f, long r) {
    if (r < 3 || r > 1000) return;
    if (f->nfds < 32) f->fds[f->nfds++] = (int)r;
    else { int i = (int)below(f, 32); syscall(SYS_close, f->fds[i]); f->fds[i] = (int)r; }
}

#define NB 04000 /* O_NONBLOCK = SOCK_NONBLOCK = EFD_NONBLOCK = TFD_NONBLOCK */

static void one(struct fuzzer *f) {
    long nr, r;
    int memory = 0; /* the call may have unmapped or protected the arena */
    uint64_t a[6];
    for (int i = 0; i < 6; i++) a[i] = any(f);
    switch (below(f, 64)) {
    case 0: nr = SYS_read; a[0] = fd(f); a[1] = ptr(f); a[2] = len(f); break;
    case 1: nr = SYS_write; a[0] = fd(f); a[1] = ptr(f); a[2] = len(f); break;
    case 2: nr = SYS_openat; a[0] = below(f, 2) ? (uint64_t)-100 : fd(f); a[1] = path(f); a[2] = flags(f) | NB; a[3] = 0600; break;
    case 3: nr = SYS_close; a[0] = fd(f); break;
    case 4: nr = SYS_newfstatat; a[0] = below(f, 2) ? (uint64_t)-100 : fd(f); a[1] = path(f); a[2] = ptr(f); a[3] = flags(f); break;
    case 5: nr = SYS_fstat; a[0] = fd(f); a[1] = ptr(f); break;
    case 6: nr = SYS_poll; a[0] = ptr(f); a[1] = below(f, 4) ? below(f, 8) : len(f); a[2] = below(f, 2); break;
    case 7: nr = SYS_lseek; a[0] = fd(f); a[1] = next(f); a[2] = below(f, 6); break;
    case 8: nr = SYS_mmap; a[0] = mem_addr(f); a[1] = len(f);  a[2] = below(f, 8);
        a[3] = (below(f, 2) ? 0x22 /* PRIVATE|ANON */ : flags(f)) & ~0x100000ULL; /* no MAP_FIXED_NOREPLACE games */
        if ((a[3] & 0x10 /* MAP_FIXED */) && !(a[0] >= (uint64_t)f->arena && a[0] < (uint64_t)f->arena + ARENA && a[1] <= ARENA)) a[3] &= ~0x10ULL;
        if (a[3] & 0x10) a[1] = (uint64_t)f->arena + ARENA - a[0] < a[1] ? (uint64_t)f->arena + ARENA - a[0] : a[1];
        a[4] = fd(f); a[5] = below(f, 4) * 4096; memory = 1; break;
    case 9: nr = SYS_mprotect; a[0] = mem_addr(f); a[1] = clamp(f, a[0], below(f, 4) * 4096); a[2] = below(f, 8) | (below(f, 8) == 0 ? flags(f) : 0); memory = 1; break;
    case 10: nr = SYS_munmap; a[0] = mem_addr(f); a[1] = clamp(f, a[0], len(f)); memory = 1; break;
    case 11: nr = SYS_brk; a[0] = below(f, 2) ? 0 : 0xffff800000000000ULL + below(f, 100); break;
    case 12: nr = SYS_rt_sigaction; a[0] = 1 + below(f, 64); a[1] = below(f, 3) ? 0 : ptr(f); a[2] = ptr(f); a[3] = below(f, 3) ? 8 : len(f);
        /* a handler only for signals nobody sends here, and never for the ones a fault raises */
        if (a[1] && (a[0] == SIGSEGV || a[0] == SIGBUS || a[0] == SIGILL || a[0] == SIGFPE || a[0] == SIGTRAP || a[0] == SIGSYS ||
                     a[0] == SIGXCPU || a[0] == SIGXFSZ || a[0] == SIGPIPE || a[0] == SIGCHLD || a[0] == SIGURG || a[0] == SIGWINCH ||
                     a[0] == SIGIO || a[0] == SIGALRM || a[0] == SIGVTALRM || a[0] == SIGPROF || a[0] == SIGCONT || a[0] >= 32)) a[1] = 0;
        if (a[1]) { uint64_t *act = (uint64_t *)(f->arena + 8192); act[0] = (uint64_t)SIG_IGN; act[1] = flags(f) & ~0x04000000ULL; act[2] = 0; act[3] = 0; a[1] = (uint64_t)act; }
        break;
    case 13: nr = SYS_rt_sigprocmask; a[0] = below(f, 4); a[1] = below(f, 2) ? 0 : ptr(f); a[2] = ptr(f); a[3] = below(f, 3) ? 8 : len(f); break;
    case 14: nr = SYS_ioctl; a[0] = fd(f); a[1] = below(f, 2) ? 0x5400 + below(f, 0x40) : next(f) & 0xffffffff; a[2] = ptr(f);
        if (a[1] == 0x5421) a[1] = 0x541B; /* FIONBIO could make an fd blocking: FIONREAD instead */
        break;
    case 15: nr = SYS_pread64; a[0] = fd(f); a[1] = ptr(f); a[2] = len(f); a[3] = next(f) >> below(f, 64); break;
    case 16: nr = SYS_pwrite64; a[0] = fd(f); a[1] = ptr(f); a[2] = len(f); a[3] = next(f) >> below(f, 64); break;
    case 17: { nr = below(f, 2) ? SYS_readv : SYS_writev; uint64_t *iov = (uint64_t *)(f->arena + 4 * 4096);
        for (int i = 0; i < 8; i++) { iov[2 * i] = ptr(f); iov[2 * i + 1] = below(f, 2) ? below(f, 4096) : len(f); }
        a[0] = fd(f); a[1] = below(f, 4) ? (uint64_t)iov : ptr(f); a[2] = below(f, 4) ? below(f, 9) : len(f); break; }
    case 18: nr = SYS_pipe2; a[0] = ptr(f); a[1] = flags(f) | NB; break;
    case 19: nr = SYS_pselect6; a[0] = below(f, 4) ? below(f, 64) : len(f); a[1] = ptr(f); a[2] = ptr(f); a[3] = ptr(f); a[4] = timeout(f); a[5] = 0; break;
    case 20: nr = SYS_mremap; a[0] = mem_addr(f); a[1] = clamp(f, a[0], below(f, 4) * 4096); a[2] = below(f, 4) * 4096; a[3] = below(f, 2); a[4] = 0; memory = 1; break;
    case 21: nr = SYS_madvise; a[0] = mem_addr(f); a[1] = clamp(f, a[0], below(f, 4) * 4096); a[2] = below(f, 2) ? below(f, 24) : next(f);
        if (a[2] == 100 || a[2] == 101) a[2] = 4; /* MADV_HWPOISON, MADV_SOFT_OFFLINE: MADV_DONTNEED */
        memory = 1; break;
    case 22: nr = SYS_dup; a[0] = fd(f); break;
    case 23: nr = SYS_dup3; a[0] = fd(f); a[1] = 3 + below(f, 60); a[2] = below(f, 2) ? 0 : flags(f); break;
    case 24: nr = SYS_nanosleep; a[0] = below(f, 8) ? timeout(f) : bad_ptr(f); a[1] = ptr(f); break;
    case 25: nr = SYS_getitimer; a[0] = below(f, 4); a[1] = ptr(f); break;
    case 26: nr = SYS_socket; a[0] = below(f, 2) ? 1 + below(f, 16) : next(f) & 0xffff; a[1] = (below(f, 4) ? 1 + below(f, 5) : flags(f)) | NB; a[2] = below(f, 4) ? 0 : any(f); break;
    case 27: nr = SYS_connect + below(f, 13); a[0] = fd(f); a[1] = ptr(f); a[2] = below(f, 2) ? 16 : len(f); a[3] = ptr(f); a[4] = ptr(f); a[5] = ptr(f);
        if (nr == SYS_accept) nr = SYS_accept4;
        if (nr == SYS_accept4) a[3] = NB;
        if (nr == SYS_socketpair) { a[1] = (a[1] & 0xf) | NB; a[3] = ptr(f); }
        if (nr == SYS_recvfrom || nr == SYS_recvmsg || nr == SYS_sendto || nr == SYS_sendmsg) a[3] = 0x40 /* MSG_DONTWAIT */ | (flags(f) & ~0x100ULL /* MSG_WAITALL */);
        break; /* connect .. getsockopt (42..55) */
    case 28: nr = SYS_wait4; a[0] = below(f, 2) ? (uint64_t)-1 : next(f); a[1] = ptr(f); a[2] = flags(f) | 1 /* WNOHANG */; a[3] = ptr(f); break;
    case 29: nr = SYS_uname; a[0] = ptr(f); break;
    case 30: nr = SYS_fcntl; a[0] = fd(f); a[1] = below(f, 4) ? below(f, 48) : next(f) & 0xffffffff; a[2] = any(f);
        if (a[1] == 4 /* F_SETFL */) a[2] |= NB;
        if (a[1] == 7 || a[1] == 38 || a[1] == 14) a[1] = 5; /* F_SETLKW, F_OFD_SETLKW: could wait: ask F_GETLK instead */
        break;
    case 31: nr = SYS_flock; a[0] = fd(f); a[1] = below(f, 16) | 4 /* LOCK_NB */; break;
    case 32: nr = below(f, 2) ? SYS_fsync : SYS_fdatasync; a[0] = fd(f); break;
    case 33: nr = SYS_ftruncate; a[0] = fd(f); a[1] = below(f, 2) ? below(f, 1 << 20) : next(f); break;
    case 34: nr = SYS_getdents64; a[0] = fd(f); a[1] = ptr(f); a[2] = len(f); break;
    case 35: nr = SYS_getcwd; a[0] = ptr(f); a[1] = len(f); break;
    case 36: nr = SYS_mkdirat; a[0] = (uint64_t)-100; a[1] = path(f); a[2] = flags(f); break;
    case 37: nr = SYS_unlinkat; a[0] = (uint64_t)-100; a[1] = path(f); a[2] = below(f, 2) ? 0x200 : flags(f); break;
    case 38: nr = SYS_renameat2; a[0] = (uint64_t)-100; a[1] = path(f); a[2] = (uint64_t)-100; a[3] = path(f); a[4] = below(f, 2) ? 0 : flags(f); break;
    case 39: nr = SYS_readlinkat; a[0] = (uint64_t)-100; a[1] = path(f); a[2] = ptr(f); a[3] = len(f); break;
    case 40: nr = SYS_symlinkat; a[0] = path(f); a[1] = (uint64_t)-100; a[2] = path(f); break;
    case 41: nr = SYS_fchmodat; a[0] = (uint64_t)-100; a[1] = path(f); a[2] = flags(f); break;
    case 42: nr = SYS_umask; a[0] = flags(f); break;
    case 43: nr = below(f, 2) ? SYS_gettimeofday : SYS_clock_gettime; a[0] = below(f, 2) ? below(f, 12) : any(f); a[1] = ptr(f); break;
    case 44: nr = SYS_prlimit64; a[0] = below(f, 2) ? 0 : next(f) & 0xffff; a[1] = below(f, 20); a[2] = 0; a[3] = ptr(f); break; /* read only */
    case 45: nr = SYS_getrusage; a[0] = below(f, 4) - 1; a[1] = ptr(f); break;
    case 46: nr = SYS_sysinfo; a[0] = ptr(f); break;
    case 47: nr = SYS_times; a[0] = ptr(f); break;
    case 48: nr = SYS_sigaltstack; a[0] = below(f, 2) ? 0 : ptr(f); a[1] = ptr(f);
        if (a[0]) { uint64_t *ss = (uint64_t *)(f->arena + 12288); ss[0] = (uint64_t)f->arena + 16384; ss[1] = 2; ss[2] = below(f, 2) ? 8192 : len(f); a[0] = (uint64_t)ss; } break;
    case 49: nr = SYS_futex; a[0] = ptr(f); a[1] = below(f, 4) ? below(f, 14) | (below(f, 2) ? 128 : 0) : flags(f); a[2] = any(f); a[3] = timeout(f); a[4] = ptr(f); a[5] = any(f);
        { uint64_t op = a[1] & 127; if (op == 0 || op == 9 || op == 6 || op == 11 || op == 12 || op == 13) a[1] &= ~256ULL; }
        if ((a[1] & 127) == 6 || (a[1] & 127) == 11 || (a[1] & 127) == 8 || (a[1] & 127) == 12 || (a[1] & 127) == 13) a[1] = 1; /* PI and requeue-PI: FUTEX_WAKE instead */
        break;
    case 50: nr = SYS_sched_getaffinity; a[0] = 0; a[1] = below(f, 2) ? 128 : len(f); a[2] = ptr(f); break;
    case 51: nr = SYS_clock_nanosleep; a[0] = below(f, 2) ? 1 : below(f, 12); a[1] = 0; a[2] = timeout(f); a[3] = ptr(f);
        if (a[0] == 2 || a[0] == 3) a[0] = 1; /* a CPU-time clock of a sleeping thread never reaches the deadline */
        break;
    case 52: nr = SYS_epoll_create1; a[0] = below(f, 2) ? 0 : flags(f); break;
    case 53: nr = SYS_epoll_ctl; a[0] = fd(f); a[1] = below(f, 5); a[2] = fd(f); a[3] = ptr(f); break;
    case 54: nr = SYS_epoll_pwait; a[0] = fd(f); a[1] = ptr(f); a[2] = below(f, 2) ? 1 + below(f, 8) : len(f); a[3] = below(f, 2); a[4] = 0; a[5] = 8; break;
    case 55: nr = SYS_eventfd2; a[0] = next(f) & 0xffffffff; a[1] = flags(f) | NB; break;
    case 56: nr = SYS_timerfd_create; a[0] = below(f, 2) ? 1 : below(f, 12); a[1] = flags(f) | NB; break;
    case 57: nr = below(f, 2) ? SYS_timerfd_settime : SYS_timerfd_gettime; a[0] = fd(f); a[1] = below(f, 2); a[2] = ptr(f); a[3] = ptr(f); break;
    case 58: nr = SYS_getrandom; a[0] = ptr(f); a[1] = below(f, 2) ? below(f, 4096) : len(f); a[2] = (flags(f) & ~0ULL) | 1 /* GRND_NONBLOCK */; break;
    case 59: nr = SYS_memfd_create; a[0] = path(f); a[1] = below(f, 2) ? 1 : flags(f); break;
    case 60: nr = SYS_statx; a[0] = (uint64_t)-100; a[1] = path(f); a[2] = flags(f); a[3] = flags(f); a[4] = ptr(f); break;
    case 61: nr = SYS_ppoll; a[0] = ptr(f); a[1] = below(f, 4) ? below(f, 8) : len(f); a[2] = timeout(f); a[3] = 0; a[4] = 8; break;
    case 62: nr = below(f, 2) ? (long)(500 + below(f, 500)) : (long)next(f); break; /* numbers Linux does not have */
    default: nr = SYS_getpid; break;
    }
    if (trace) fprintf(stderr, "%ld(%#lx, %#lx, %#lx, %#lx, %#lx, %#lx)\n", nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    f->calls++;
    if (r >= 0) { f->ok++; if (nr == SYS_openat || nr == SYS_socket || nr == SYS_dup || nr == SYS_epoll_create1 || nr == SYS_eventfd2 ||
                          nr == SYS_timerfd_create || nr == SYS_memfd_create || nr == SYS_dup3 || nr == SYS_accept4) keep(f, r); }
    else if (errno >= 1 && errno <= 4095) f->err++;
    else f->bad++;
    if (nr == SYS_rt_sigprocmask) { sigset_t none; sigemptyset(&none); sigprocmask(SIG_SETMASK, &none, 0); }
    if (nr == SYS_pipe2 && r == 0 && a[0] >= (uint64_t)f->arena && a[0] + 8 <= (uint64_t)f->arena + ARENA) {
        int *p = (int *)a[0];
        keep(f, p[0]);
        keep(f, p[1]);
    }
    if (memory) { /* put the arena back as it was (zeroed) and its guard page */
        if (mmap(f->arena, ARENA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED ||
            mmap(f->arena + ARENA, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
            perror("sysfuzz: restoring the arena");
            exit(1);
        }
    }
}

static void *run(void *arg) {
    struct fuzzer *f = arg;
    long n = f->calls;
    f->calls = 0;
    f->arena = mmap(0, ARENA + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (f->arena == MAP_FAILED) { perror("mmap"); exit(1); }
    mprotect(f->arena + ARENA, 4096, PROT_NONE);
    for (long i = 0; i < n; i++) one(f);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: sysfuzz SEED CALLS THREADS\n"); return 2; }
    if (!getenv("SYSFUZZ_IN_DOMAIN")) { fprintf(stderr, "sysfuzz: refusing to run outside a domain (it damages the files it names)\n"); return 2; }
    trace = getenv("SYSFUZZ_TRACE") != 0;
    text = getenv("SYSFUZZ_TEXT") != 0;
    uint64_t seed = strtoull(argv[1], 0, 10);
    long calls = atol(argv[2]);
    int threads = atoi(argv[3]);
    if (threads < 1 || threads > 16) { fprintf(stderr, "sysfuzz: 1..16 threads\n"); return 2; }
    signal(SIGPIPE, SIG_IGN);
    struct fuzzer fz[16];
    pthread_t t[16];
    memset(fz, 0, sizeof fz);
    for (int i = 0; i < threads; i++) {
        fz[i].rng = seed * 0x9E3779B97F4A7C15ULL + (uint64_t)i * 0xD1B54A32D192ED03ULL + 1;
        fz[i].calls = calls;
        if (i > 0 && pthread_create(&t[i], 0, run, &fz[i]) != 0) { perror("pthread_create"); return 1; }
    }
    run(&fz[0]);
    for (int i = 1; i < threads; i++) pthread_join(t[i], 0);
    long total = 0, ok = 0, err = 0, bad = 0;
    for (int i = 0; i < threads; i++) { total += fz[i].calls; ok += fz[i].ok; err += fz[i].err; bad += fz[i].bad; }
    printf("sysfuzz done %ld calls, %ld ok, %ld errors, %ld non-linux\n", total, ok, err, bad);
    return bad != 0;
}
