/* cpu_sieve: CPU-bound work with almost no syscalls: a prime sieve below N and an xorshift/multiply checksum loop, ROUNDS times; prints the results (also a benchmark workload). Run: cpu_sieve [N=2000000] [ROUNDS=1] (no stdin). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    int rounds = argc > 2 ? atoi(argv[2]) : 1;
    if (n < 2 || rounds < 1) { fprintf(stderr, "usage: cpu_sieve [N>=2] [ROUNDS>=1]\n"); return 2; }
    unsigned char *composite = malloc((size_t)n);
    if (!composite) { fprintf(stderr, "allocation failed\n"); return 3; }
    long count = 0;
    uint64_t sum = 0, check = 0x9e3779b97f4a7c15ull;
    for (int r = 0; r < rounds; r++) {
        memset(composite, 0, (size_t)n);
        count = 0;
        sum = 0;
        for (long i = 2; i < n; i++) {
            if (composite[i]) continue;
            count++;
            sum += (uint64_t)i;
            for (long j = i * i; j < n; j += i) composite[j] = 1;
        }
        uint64_t x = check + (uint64_t)r;
        for (long i = 0; i < n; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            check = check * 6364136223846793005ull + (x ^ (uint64_t)composite[i]);
        }
    }
    printf("primes below %ld: %ld\n", n, count);
    printf("sum of primes: %llu\n", (unsigned long long)sum);
    printf("rounds %d checksum %016llx\n", rounds, (unsigned long long)check);
    free(composite);
    return 0;
}
