/* bigimage: an 8 MiB initialised .data array and a 32 MiB .bss array (loader must copy and zero them); too large for --memory 4 or 16. Run: bigimage (no args, no stdin). */
#include <stdint.h>
#include <stdio.h>

#define DATA_LEN (8u << 20)
#define BSS_LEN (32u << 20)

/* a few non-zero initial bytes put the whole array in .data (file-backed), not .bss */
#define M4(x) x, x, x, x
#define M16(x) M4(x), M4(x), M4(x), M4(x)
static unsigned char data[DATA_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, M16(9) };
static unsigned char bss[BSS_LEN];

int main(void)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < DATA_LEN; i++) h = (h ^ data[i]) * 1099511628211ull;
    printf("data hash %016llx last byte %d\n", (unsigned long long)h, data[DATA_LEN - 1]);
    int zero = 1;
    for (size_t i = 0; i < BSS_LEN; i++) if (bss[i]) { zero = 0; break; }
    printf("bss zeroed %s\n", zero ? "yes" : "no");
    for (size_t i = 0; i < BSS_LEN; i += 4096) bss[i] = (unsigned char)(i >> 12);
    for (size_t i = 0; i < DATA_LEN; i += 4096) data[i] ^= 0x5a;
    h = 1469598103934665603ull;
    for (size_t i = 0; i < BSS_LEN; i += 4096) h = (h ^ bss[i] ^ data[i % DATA_LEN]) * 1099511628211ull;
    printf("after writes hash %016llx\n", (unsigned long long)h);
    return 0;
}
