/* crash: prints unbuffered lines to stdout and stderr, then dies by a signal. Run: crash KIND; KIND = segv (null read, 139) | segvwrite (write to 0x1000, 139) | gp (non-canonical read, #GP, 139) | fpe (divide by zero, 136) | intmin (INT_MIN/-1, 136) | ill (__builtin_trap/ud2, 132) | abort (abort(), 134) | port (out 0x20, al: #GP at CPL 3, 139) | portdx (out dx=0x20, 139). */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile int zero = 0, minus1 = -1, intmin = INT_MIN, thousand = 1000;
static int *volatile nullp = 0;

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc != 2) { fprintf(stderr, "usage: crash KIND\n"); return 2; }
    const char *k = argv[1];
    for (int i = 1; i <= 3; i++) {
        printf("line %d before the crash\n", i);
        fprintf(stderr, "err line %d\n", i);
    }
    printf("crashing with %s\n", k);
    if (strcmp(k, "segv") == 0) { printf("read %d\n", *nullp); }
    else if (strcmp(k, "segvwrite") == 0) { *(volatile int *)(uintptr_t)0x1000 = 1; }
    else if (strcmp(k, "gp") == 0) { printf("read %d\n", *(volatile int *)(uintptr_t)0x8000000000000000ull); }
    else if (strcmp(k, "fpe") == 0) { printf("quotient %d\n", thousand / zero); }
    else if (strcmp(k, "intmin") == 0) { printf("quotient %d\n", intmin / minus1); }
    else if (strcmp(k, "ill") == 0) { __builtin_trap(); }
    else if (strcmp(k, "abort") == 0) { abort(); }
    else if (strcmp(k, "port") == 0) { __asm__ volatile("outb %%al, $0x20" : : "a"(0)); }
    else if (strcmp(k, "portdx") == 0) { __asm__ volatile("outb %%al, %%dx" : : "a"(0), "d"(0x20)); }
    else { fprintf(stderr, "unknown kind\n"); return 2; }
    printf("survived?!\n");
    return 0;
}
