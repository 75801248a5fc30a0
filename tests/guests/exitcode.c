/* exitcode: ends the process in one of several ways with status N (buffered stdio is flushed or lost as natively). Run: exitcode MODE N; MODE = exit | return | _exit | sysexit (raw SYS_exit) | atexit (handler prints, then exit N). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void handler(void) { printf("atexit handler ran\n"); }

int main(int argc, char **argv)
{
    if (argc != 3) { fprintf(stderr, "usage: exitcode MODE N\n"); return 2; }
    int n = atoi(argv[2]);
    printf("mode %s status %d\n", argv[1], n);
    fprintf(stderr, "stderr before exit\n");
    if (strcmp(argv[1], "exit") == 0) exit(n);
    if (strcmp(argv[1], "return") == 0) return n;
    if (strcmp(argv[1], "_exit") == 0) _exit(n);            /* the buffered stdout line is lost, as natively */
    if (strcmp(argv[1], "sysexit") == 0) {
        fflush(stdout);
        syscall(SYS_exit, n);                                /* exit of the only thread ends the process */
    }
    if (strcmp(argv[1], "atexit") == 0) { atexit(handler); exit(n); }
    fprintf(stderr, "unknown mode\n");
    return 2;
}
