/* Prints the time-stamp counter: in a domain it must read the host's (as natively and on ptrace), so that a
 * program's rdtsc never runs backwards across a restore or migration (a vCPU's own TSC starts again at 0). */
#include <stdio.h>
#include <x86intrin.h>

int main(void)
{
    printf("%llu\n", (unsigned long long)__rdtsc());
    return 0;
}
