/* malloc_mix: brk (raw), malloc small/large, realloc growing/shrinking a large block (mremap), calloc zeroing, free, raw mmap/mremap/munmap; prints content hashes. Run: malloc_mix (no args, no stdin). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}
#define FNV0 1469598103934665603ull

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        p[i] = (unsigned char)x;
    }
}

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) if (p[i]) return 0;
    return 1;
}

int main(void)
{
    /* raw brk before stdio or malloc touch the heap: grow by 64 KiB, write it, shrink back */
    int brk_grow = 0, brk_shrink = 0;
    uintptr_t cur = (uintptr_t)syscall(SYS_brk, 0);
    uintptr_t want = cur + 65536;
    uintptr_t got = (uintptr_t)syscall(SYS_brk, want);
    if (cur != 0 && got == want) {
        brk_grow = all_zero((unsigned char *)cur, 65536);
        memset((void *)cur, 0x5a, 65536);
        brk_shrink = (uintptr_t)syscall(SYS_brk, cur) == cur;
    }
    printf("brk grow %s\n", brk_grow ? "ok" : "FAILED");
    printf("brk shrink %s\n", brk_shrink ? "ok" : "FAILED");

    /* many small blocks */
    enum { NSMALL = 2000 };
    static unsigned char *small[NSMALL];
    uint64_t h = FNV0;
    for (int i = 0; i < NSMALL; i++) {
        size_t sz = 1 + (size_t)(i * 37 % 500);
        small[i] = malloc(sz);
        if (!small[i]) { printf("small malloc failed\n"); return 1; }
        fill(small[i], sz, (unsigned)i);
    }
    for (int i = 0; i < NSMALL; i++) h = fnv(small[i], 1 + (size_t)(i * 37 % 500), h);
    printf("small blocks %d hash %016llx\n", NSMALL, (unsigned long long)h);
    for (int i = 0; i < NSMALL; i += 2) free(small[i]);
    /* calloc of small blocks right after freeing dirty ones must still be zero */
    int czero = 1;
    for (int i = 0; i < NSMALL; i += 2) {
        size_t sz = 1 + (size_t)(i * 37 % 500);
        small[i] = calloc(1, sz);
        if (!small[i]) { printf("calloc failed\n"); return 1; }
        czero &= all_zero(small[i], sz);
    }
    printf("small calloc zeroed %s\n", czero ? "yes" : "NO");
    for (int i = 0; i < NSMALL; i++) free(small[i]);

    /* a large block (mmap-backed), grown and shrunk with realloc (mremap), contents preserved */
    size_t big = 4u << 20;
    unsigned char *b = malloc(big);
    if (!b) { printf("large malloc failed\n"); return 1; }
    fill(b, big, 7);
    uint64_t hb = fnv(b, big, FNV0);
    printf("large 4 MiB hash %016llx\n", (unsigned long long)hb);
    b = realloc(b, 16u << 20);
    if (!b) { printf("realloc grow failed\n"); return 1; }
    printf("realloc 16 MiB keeps contents %s\n", fnv(b, big, FNV0) == hb ? "yes" : "NO");
    fill(b + big, (16u << 20) - big, 8);
    printf("realloc 16 MiB hash %016llx\n", (unsigned long long)fnv(b, 16u << 20, FNV0));
    b = realloc(b, 1u << 20);
    if (!b) { printf("realloc shrink failed\n"); return 1; }
    printf("realloc shrink 1 MiB hash %016llx\n", (unsigned long long)fnv(b, 1u << 20, FNV0));
    free(b);

    /* large calloc: zeroed */
    unsigned char *c = calloc(3, 1u << 20);
    if (!c) { printf("large calloc failed\n"); return 1; }
    printf("large calloc zeroed %s\n", all_zero(c, 3u << 20) ? "yes" : "NO");
    free(c);

    /* raw anonymous mmap / mremap / munmap */
    size_t len = 1u << 20;
    unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) { printf("mmap failed\n"); return 1; }
    printf("mmap zeroed %s\n", all_zero(m, len) ? "yes" : "NO");
    fill(m, len, 9);
    uint64_t hm = fnv(m, len, FNV0);
    unsigned char *m2 = mremap(m, len, 4 * len, MREMAP_MAYMOVE);
    if (m2 == MAP_FAILED) { printf("mremap failed\n"); return 1; }
    printf("mremap keeps contents %s\n", fnv(m2, len, FNV0) == hm ? "yes" : "NO");
    printf("mremap new part zeroed %s\n", all_zero(m2 + len, 3 * len) ? "yes" : "NO");
    printf("munmap %s\n", munmap(m2, 4 * len) == 0 ? "ok" : "FAILED");

    /* map, unmap, map again many times: address space is reused, not leaked */
    int cycles_ok = 1;
    for (int i = 0; i < 200; i++) {
        void *p = mmap(NULL, 2u << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) { cycles_ok = 0; break; }
        memset(p, i, 4096);
        if (munmap(p, 2u << 20) != 0) { cycles_ok = 0; break; }
    }
    printf("200 map/unmap cycles of 2 MiB %s\n", cycles_ok ? "ok" : "FAILED");
    return 0;
}
