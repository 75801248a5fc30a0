/* vm_maps: mmap with and without a hint, MAP_FIXED over a mapping, MAP_FIXED_NOREPLACE (EEXIST), mremap growing in place and moving (content kept), madvise(MADV_DONTNEED) zeroes, munmap, brk grow/shrink; prints facts, never addresses. With an argument it then dies: `touch-unmapped` (read of a munmapped page), `write-readonly` (write to a PROT_READ page), `touch-none` (read of a PROT_NONE page): SIGSEGV, exit status 139. With VM_SHOW_ADDR set it also prints the address it faults at. Run: vm_maps [touch-unmapped|write-readonly|touch-none]. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static const long pg = 4096;

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) { seed = seed * 1103515245u + 12345u; p[i] = (unsigned char)(seed >> 16); }
}

static int check(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) { seed = seed * 1103515245u + 12345u; if (p[i] != (unsigned char)(seed >> 16)) return 0; }
    return 1;
}

static int zeros(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) if (p[i]) return 0;
    return 1;
}

static const char *err(void *r) { return r == MAP_FAILED ? (errno == EEXIST ? "EEXIST" : errno == ENOMEM ? "ENOMEM" : "other") : "ok"; }

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    unsigned char *a = mmap(NULL, 8 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("mmap 8 pages: %s, page aligned %s, zero %s\n", err(a), ((uintptr_t)a & (pg - 1)) ? "no" : "yes", zeros(a, 8 * pg) ? "yes" : "no");
    fill(a, 8 * pg, 1);

    /* A hint at a free address is honoured. */
    munmap(a + 6 * pg, 2 * pg);
    unsigned char *h = mmap(a + 6 * pg, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("hint at a free address honoured: %s\n", h == a + 6 * pg ? "yes" : "no");

    /* MAP_FIXED_NOREPLACE over a mapping: EEXIST; MAP_FIXED replaces (and zeroes) it. */
    void *r = mmap(a + 2 * pg, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    printf("MAP_FIXED_NOREPLACE over a mapping: %s\n", err(r));
    r = mmap(a + 2 * pg, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("MAP_FIXED over a mapping: %s at the address %s, zeroed %s, neighbours kept %s\n", err(r),
           r == a + 2 * pg ? "yes" : "no", zeros(a + 2 * pg, pg) ? "yes" : "no",
           check(a, 2 * pg, 1) ? "yes" : "no");

    /* munmap a page, then MAP_FIXED_NOREPLACE into the hole works. */
    printf("munmap: %d\n", munmap(a + 3 * pg, pg));
    r = mmap(a + 3 * pg, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    printf("MAP_FIXED_NOREPLACE into the hole: %s at the address %s\n", err(r), r == a + 3 * pg ? "yes" : "no");

    /* mremap: grow in place when there is room, move when there is not; content kept either way. */
    unsigned char *m = mmap(NULL, 8 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(m + 4 * pg, 4 * pg); /* room after its first 4 pages */
    fill(m, 4 * pg, 7);
    unsigned char *g = mremap(m, 4 * pg, 8 * pg, 0);
    printf("mremap grow in place: %s, content kept %s, new part zero %s\n", err(g), g == m && check(g, 4 * pg, 7) ? "yes" : "no",
           g != MAP_FAILED && zeros(g + 4 * pg, 4 * pg) ? "yes" : "no");
    unsigned char *blocker = mmap(g + 8 * pg, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    unsigned char *n = mremap(g, 8 * pg, 64 * pg, 0);
    printf("mremap grow without MAYMOVE, blocked: %s\n", err(n));
    n = mremap(g, 8 * pg, 64 * pg, MREMAP_MAYMOVE);
    printf("mremap grow with MAYMOVE: %s, moved %s, content kept %s, rest zero %s\n", err(n), n != g ? "yes" : "no",
           n != MAP_FAILED && check(n, 4 * pg, 7) ? "yes" : "no", n != MAP_FAILED && zeros(n + 4 * pg, 60 * pg) ? "yes" : "no");
    unsigned char *s = mremap(n, 64 * pg, 2 * pg, 0);
    printf("mremap shrink: in place %s, content kept %s\n", s == n ? "yes" : "no", check(s, 2 * pg, 7) ? "yes" : "no");
    munmap(blocker, pg);

    /* madvise(MADV_DONTNEED) on private anonymous memory: reads back as zeros. */
    fill(a, 8 * pg, 3);
    int rc = madvise(a + pg, 2 * pg, MADV_DONTNEED);
    printf("madvise DONTNEED: %d, zeroed %s, neighbours kept %s\n", rc, zeros(a + pg, 2 * pg) ? "yes" : "no",
           check(a, 1, 3) ? "yes" : "no");

    /* mprotect read-only: still readable. */
    unsigned char before = a[4 * pg + 5];
    rc = mprotect(a + 4 * pg, pg, PROT_READ);
    printf("mprotect read-only: %d, still readable %s\n", rc, a[4 * pg + 5] == before ? "yes" : "no");

    /* brk grows and shrinks; a page freed by brk reads as zeros again. */
    char *b0 = (char *)syscall(SYS_brk, 0);
    char *b1 = (char *)syscall(SYS_brk, b0 + 3 * pg);
    memset(b0, 0x5a, 3 * pg);
    char *b2 = (char *)syscall(SYS_brk, b0 + pg);
    char *b3 = (char *)syscall(SYS_brk, b0 + 3 * pg);
    printf("brk: grew %s, shrank %s, regrew %s, regrown part zero %s, kept part kept %s\n", b1 == b0 + 3 * pg ? "yes" : "no",
           b2 == b0 + pg ? "yes" : "no", b3 == b0 + 3 * pg ? "yes" : "no",
           zeros((unsigned char *)b0 + pg, 2 * pg) ? "yes" : "no", b0[pg - 1] == 0x5a ? "yes" : "no");

    if (argc > 1) {
        unsigned char *d = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        d[0] = 1;
        d[pg] = 2;
        printf("about to %s\n", argv[1]);
        if (getenv("VM_SHOW_ADDR")) printf("fault address %p\n", (void *)(strcmp(argv[1], "touch-none") == 0 ? d : d + pg + (strcmp(argv[1], "write-readonly") == 0 ? 8 : 0)));
        if (strcmp(argv[1], "touch-unmapped") == 0) { munmap(d + pg, pg); printf("read %d\n", *(volatile unsigned char *)(d + pg)); }
        else if (strcmp(argv[1], "write-readonly") == 0) { mprotect(d + pg, pg, PROT_READ); *(volatile unsigned char *)(d + pg + 8) = 3; }
        else if (strcmp(argv[1], "touch-none") == 0) { mprotect(d, 2 * pg, PROT_NONE); printf("read %d\n", *(volatile unsigned char *)d); }
        else { fprintf(stderr, "unknown kind\n"); return 2; }
        printf("survived?!\n");
    }
    return 0;
}
