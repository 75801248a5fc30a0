/* memtouch: allocates N MiB and writes every byte (then verifies every page and hashes a sample); exits 3 with "allocation ... failed" on stderr if the memory is not there. Run: memtouch MIB [PASSES=1] (no stdin). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: memtouch MIB [PASSES]\n"); return 2; }
    long mib = atol(argv[1]);
    int passes = argc > 2 ? atoi(argv[2]) : 1;
    if (mib < 1 || passes < 1) { fprintf(stderr, "usage: memtouch MIB [PASSES]\n"); return 2; }
    size_t len = (size_t)mib << 20;
    unsigned char *p = malloc(len);
    if (!p) { fprintf(stderr, "allocation of %ld MiB failed\n", mib); return 3; }
    uint64_t h = 1469598103934665603ull;
    for (int pass = 0; pass < passes; pass++) {
        memset(p, 0xa5 ^ pass, len);
        for (size_t off = 0; off < len; off += 4096) {
            uint64_t v = (uint64_t)(off >> 12) * 0x9e3779b97f4a7c15ull + (uint64_t)pass;
            memcpy(p + off, &v, sizeof v);
        }
        int bad = 0;
        for (size_t off = 0; off < len; off += 4096) {
            uint64_t v;
            memcpy(&v, p + off, sizeof v);
            if (v != (uint64_t)(off >> 12) * 0x9e3779b97f4a7c15ull + (uint64_t)pass || p[off + 8] != (0xa5 ^ pass) || p[off + 4095] != (0xa5 ^ pass)) bad++;
        }
        for (size_t off = 0; off < len; off += 4096 * 7) h = (h ^ p[off] ^ p[off + 1] ^ p[off + 4095]) * 1099511628211ull;
        printf("pass %d: touched %ld MiB, bad pages %d\n", pass, mib, bad);
    }
    printf("hash %016llx\n", (unsigned long long)h);
    free(p);
    return 0;
}
