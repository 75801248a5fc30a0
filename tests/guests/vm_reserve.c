/* vm_reserve: a Go-like address space: reserves 64 GiB PROT_NONE (MAP_NORESERVE), mprotects and touches a few pages
   inside it, maps pieces with MAP_FIXED over the reservation, checks /proc/self/maps splits it as Linux does, moves a
   touched region with mremap (content kept), grows one, frees pages with munmap and madvise(MADV_DONTNEED) and reads
   zeros, then takes SIGSEGV (recovered with siglongjmp) for a read of the reservation, a read of a munmapped page and a
   write to a read-only page, checking si_code and si_addr. Also touches 200 scattered pages of the reservation.
   Prints facts, never addresses. Run: vm_reserve [downgrade] — with downgrade it also takes rights away from pages
   it touched (a write to a page made read-only, a read of one made PROT_NONE), which kvm_pvm cannot enforce. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static const size_t pg = 4096;
static sigjmp_buf jb;
static volatile void *fault_addr;
static volatile int fault_code;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)uc;
    fault_addr = si->si_addr;
    fault_code = si->si_code;
    siglongjmp(jb, 1);
}

static const char *code_name(int c) { return c == SEGV_MAPERR ? "SEGV_MAPERR" : c == SEGV_ACCERR ? "SEGV_ACCERR" : "other"; }

/* Reads (or writes) one byte at p: "ok" or the signal's si_code, with whether si_addr was p. */
static void probe(const char *what, volatile unsigned char *p, int write)
{
    fault_addr = NULL;
    if (sigsetjmp(jb, 1) == 0) {
        if (write) *p = 0x77; else (void)*p;
        printf("%s: no fault\n", what);
    } else {
        printf("%s: SIGSEGV %s, si_addr right %s\n", what, code_name(fault_code), fault_addr == (void *)p ? "yes" : "no");
    }
}

static int zeros(const unsigned char *p, size_t n) { for (size_t i = 0; i < n; i++) if (p[i]) return 0; return 1; }

/* The /proc/self/maps line holding p: its size and permissions. */
static int maps_line(const void *p, size_t *size, char perms[5])
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return 0;
    char line[512];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        char pr[5];
        if (sscanf(line, "%lx-%lx %4s", &a, &b, pr) != 3) continue;
        if ((uintptr_t)p >= a && (uintptr_t)p < b) { *size = b - a; memcpy(perms, pr, 5); found = 1; break; }
    }
    fclose(f);
    return found;
}

static void show(const char *what, const void *p)
{
    size_t size = 0;
    char perms[5] = "";
    if (maps_line(p, &size, perms)) printf("maps, %s: %s, %zu KiB\n", what, perms, size >> 10);
    else printf("maps, %s: not listed\n", what);
}

int main(int argc, char **argv)
{
    int downgrade = argc > 1 && strcmp(argv[1], "downgrade") == 0;
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);

    size_t big = 64UL << 30;
    unsigned char *r = mmap(NULL, big, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    printf("reserve 64 GiB PROT_NONE: %s\n", r == MAP_FAILED ? strerror(errno) : "ok");
    if (r == MAP_FAILED) return 1;
    show("the reservation", r);
    probe("read of the reservation", r + 12345 * pg, 0);

    /* mprotect a few pages inside and use them. */
    unsigned char *w = r + (1UL << 30);
    printf("mprotect 4 pages read-write: %d\n", mprotect(w, 4 * pg, PROT_READ | PROT_WRITE));
    printf("fresh pages read zero: %s\n", zeros(w, 4 * pg) ? "yes" : "no");
    for (size_t i = 0; i < 4 * pg; i++) w[i] = (unsigned char)(i * 7);
    int ok = 1;
    for (size_t i = 0; i < 4 * pg; i++) ok &= w[i] == (unsigned char)(i * 7);
    printf("written and read back: %s\n", ok ? "yes" : "no");
    show("the read-write pages", w);
    show("the reservation below them", w - pg);
    show("the reservation above them", w + 4 * pg);

    /* MAP_FIXED over the reservation, MAP_FIXED_NOREPLACE on it. */
    unsigned char *f = mmap(r + (2UL << 30), 16 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("MAP_FIXED over the reservation: %s\n", f == r + (2UL << 30) ? "at the address" : "elsewhere");
    void *nr = mmap(r + (3UL << 30), pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    printf("MAP_FIXED_NOREPLACE on the reservation: %s\n", nr == MAP_FAILED ? (errno == EEXIST ? "EEXIST" : strerror(errno)) : "mapped");

    /* A hint below the reservation, in free space, is honoured. */
    unsigned char *hint = r - (16UL << 30);
    unsigned char *h = mmap(hint, 8 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("hint in free space honoured: %s\n", h == hint ? "yes" : "no");
    /* Two mappings without a hint do not overlap. (Whether the second sits right below the first depends on the
     * holes the native run's randomized layout has: AddressSpaceTests check the top-down placement itself.) */
    unsigned char *t1 = mmap(NULL, 4 * pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *t2 = mmap(NULL, 4 * pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("two mappings without a hint apart: %s\n", t1 != MAP_FAILED && t2 != MAP_FAILED && (t2 + 4 * pg <= t1 || t1 + 4 * pg <= t2) ? "yes" : "no");

    /* mremap: move a touched region (content kept, old place gone), then grow it. */
    for (size_t i = 0; i < 16 * pg; i++) f[i] = (unsigned char)(i * 13 + 1);
    unsigned char *m = mremap(f, 16 * pg, 16 * pg, MREMAP_MAYMOVE | MREMAP_FIXED, r + (4UL << 30));
    if (m == MAP_FAILED) m = mremap(f, 16 * pg, 32 * pg, MREMAP_MAYMOVE);
    else m = mremap(m, 16 * pg, 32 * pg, MREMAP_MAYMOVE);
    ok = m != MAP_FAILED;
    for (size_t i = 0; ok && i < 16 * pg; i++) ok &= m[i] == (unsigned char)(i * 13 + 1);
    printf("mremap move and grow: content kept %s, new part zero %s\n", ok ? "yes" : "no",
           m != MAP_FAILED && zeros(m + 16 * pg, 16 * pg) ? "yes" : "no");

    /* munmap and MADV_DONTNEED free pages: they read zeros (or fault) afterwards. */
    memset(m, 0xab, 32 * pg);
    int rc = madvise(m + 4 * pg, 4 * pg, MADV_DONTNEED);
    printf("madvise DONTNEED: %d, reads zero %s, neighbour kept %s\n", rc,
           zeros(m + 4 * pg, 4 * pg) ? "yes" : "no", m[3 * pg] == 0xab && m[8 * pg] == 0xab ? "yes" : "no");
    printf("munmap 2 pages: %d\n", munmap(m + 10 * pg, 2 * pg));
    probe("read of a munmapped page", m + 10 * pg + 100, 0);
    unsigned char *again = mmap(m + 10 * pg, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    printf("mapped again in the hole: %s, reads zero %s\n", again == m + 10 * pg ? "yes" : "no", again != MAP_FAILED && zeros(again, 2 * pg) ? "yes" : "no");

    /* A write to a read-only page faults; the page keeps its content. */
    printf("mprotect read-only: %d\n", mprotect(m + 20 * pg, pg, PROT_READ));
    if (downgrade) probe("write to a read-only page", m + 20 * pg + 8, 1);
    printf("read-only page kept: %s\n", m[20 * pg + 8] == 0xab ? "yes" : "no");
    int p1 = mprotect(m + 21 * pg, pg, PROT_NONE);
    if (downgrade) probe("read of the page made PROT_NONE", m + 21 * pg, 0);
    int p2 = mprotect(m + 21 * pg, pg, PROT_READ | PROT_WRITE);
    printf("mprotect PROT_NONE then read-write again: %d %d, content kept %s\n", p1, p2, m[21 * pg] == 0xab ? "yes" : "no");
    probe("read of a PROT_NONE page", r + 5 * pg, 0);

    /* Scattered touches of the reservation, 16 MiB apart. */
    unsigned long sum = 0;
    for (int i = 0; i < 200; i++) {
        unsigned char *p = r + (5UL << 30) + (size_t)i * (16UL << 20);
        mprotect(p, pg, PROT_READ | PROT_WRITE);
        p[i] = (unsigned char)i;
        sum += p[i];
    }
    printf("200 scattered pages: sum %lu\n", sum);

    printf("munmap the reservation: %d\n", munmap(r, big));
    show("the reservation after munmap", r + 12345 * pg);
    return 0;
}
