/* Baseline for the syscall benchmark: the bare ptrace platform round trip (PTRACE_SYSEMU stop, GETREGS, SETREGS,
   resume) with no kernel layer behind it, i.e. the floor of what any syscall costs on the ptrace platform here.
   Usage: ptrace-roundtrip [n]   prints "ns_per_call <n>". */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifndef PTRACE_SYSEMU
#define PTRACE_SYSEMU 31
#endif
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000;
    pid_t c = fork();
    if (c == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        for (long i = 0; i < n; i++) syscall(SYS_getppid);
        syscall(SYS_exit_group, 0);
    }
    int st;
    waitpid(c, &st, 0);
    struct timespec a, b;
    struct user_regs_struct r;
    long calls = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (;;) {
        if (ptrace(PTRACE_SYSEMU, c, 0, 0) < 0) break;
        waitpid(c, &st, 0);
        if (!WIFSTOPPED(st)) break;
        ptrace(PTRACE_GETREGS, c, 0, &r);
        if (r.orig_rax == SYS_exit_group) break;
        calls++;
        r.rax = 0;
        ptrace(PTRACE_SETREGS, c, 0, &r);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    kill(c, SIGKILL);
    waitpid(c, &st, 0);
    printf("ns_per_call %.0f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / calls);
    return 0;
}
