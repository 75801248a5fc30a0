/* random: getrandom (flags 0 and GRND_NONBLOCK, small and 4 KiB requests), getentropy, AT_RANDOM in auxv; prints only sanity checks. Run: random (no args, no stdin). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <unistd.h>

static int nonzero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) if (p[i]) return 1;
    return 0;
}

int main(void)
{
    unsigned char a[32], b[32];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    ssize_t na = getrandom(a, sizeof a, 0);
    ssize_t nb = getrandom(b, sizeof b, 0);
    printf("getrandom returned 32 twice %s\n", na == 32 && nb == 32 ? "yes" : "no");
    printf("getrandom bytes not all zero %s\n", nonzero(a, 32) && nonzero(b, 32) ? "yes" : "no");
    printf("two calls differ %s\n", memcmp(a, b, 32) != 0 ? "yes" : "no");

    unsigned char c[16] = { 0 };
    printf("GRND_NONBLOCK works %s\n", getrandom(c, sizeof c, GRND_NONBLOCK) == 16 && nonzero(c, 16) ? "yes" : "no");

    static unsigned char big[4096];
    ssize_t got = 0;
    while (got < (ssize_t)sizeof big) {
        ssize_t r = getrandom(big + got, sizeof big - (size_t)got, 0);
        if (r <= 0) break;
        got += r;
    }
    int seen[256] = { 0 }, distinct = 0;
    for (size_t i = 0; i < sizeof big; i++) if (!seen[big[i]]++) distinct++;
    printf("4 KiB filled %s, >= 200 distinct byte values %s\n", got == 4096 ? "yes" : "no", distinct >= 200 ? "yes" : "no");

    unsigned char e[32] = { 0 };
    printf("getentropy works %s\n", getentropy(e, sizeof e) == 0 && nonzero(e, 32) ? "yes" : "no");

    const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
    printf("AT_RANDOM present %s, not all zero %s\n", r ? "yes" : "no", r && nonzero(r, 16) ? "yes" : "no");
    return 0;
}
