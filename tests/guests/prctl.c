/* prctl: PR_GET_NAME (the program file's base name, cut to 15 bytes), PR_SET_NAME (cut to 15), PR_*_DUMPABLE, PR_*_NO_NEW_PRIVS, PR_*_PDEATHSIG, PR_*_TIMERSLACK, unknown options EINVAL, EFAULT. Run: prctl (no args), or prctl keep (sets them all, sleeps 1 s, reads them back: across checkpoints). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static void show(const char *what, long r) { printf("%s: %ld%s%s\n", what, r, r < 0 ? " " : "", r < 0 ? strerror(errno) : ""); }

static int keep(void)
{
    prctl(PR_SET_NAME, "kept-name");
    prctl(PR_SET_DUMPABLE, 0);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    prctl(PR_SET_PDEATHSIG, 9);
    prctl(PR_SET_TIMERSLACK, 1234);
    struct timespec t = {1, 0};
    while (nanosleep(&t, &t) != 0) { }
    char name[16] = {0};
    int sig = 0;
    prctl(PR_GET_NAME, name);
    prctl(PR_GET_PDEATHSIG, &sig);
    printf("after 1 s: name %s, dumpable %d, no_new_privs %d, pdeathsig %d, timer slack %d\n", name,
           prctl(PR_GET_DUMPABLE), prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), sig, prctl(PR_GET_TIMERSLACK));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "keep") == 0) return keep();
    char name[32];
    memset(name, 'x', sizeof name);
    show("get name", prctl(PR_GET_NAME, name));
    const char *base = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    printf("initial name is the file's base name: %s\n", strncmp(name, base, 15) == 0 ? "yes" : "no");
    printf("name bytes 15..: %d %d (NUL-terminated in 16: %s)\n", name[15], name[16], name[15] == 0 ? "yes" : "no");
    show("set name", prctl(PR_SET_NAME, "worker-1"));
    memset(name, 'x', sizeof name);
    prctl(PR_GET_NAME, name);
    printf("name now '%s'\n", name);
    show("set long name", prctl(PR_SET_NAME, "a-very-long-thread-name-indeed"));
    prctl(PR_GET_NAME, name);
    printf("name now '%s' (%zu bytes)\n", name, strlen(name));
    show("set empty name", prctl(PR_SET_NAME, ""));
    prctl(PR_GET_NAME, name);
    printf("name now '%s'\n", name);
    show("set name from a bad pointer", prctl(PR_SET_NAME, (char *)8));
    show("get name into a bad pointer", prctl(PR_GET_NAME, (char *)8));

    show("get dumpable", prctl(PR_GET_DUMPABLE));
    show("set dumpable 0", prctl(PR_SET_DUMPABLE, 0));
    show("get dumpable", prctl(PR_GET_DUMPABLE));
    show("set dumpable 2", prctl(PR_SET_DUMPABLE, 2));
    show("set dumpable 1", prctl(PR_SET_DUMPABLE, 1));

    show("get no_new_privs", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    show("set no_new_privs with junk", prctl(PR_SET_NO_NEW_PRIVS, 1, 1, 0, 0));
    show("set no_new_privs", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    show("get no_new_privs", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));

    int sig = -1;
    show("get pdeathsig", prctl(PR_GET_PDEATHSIG, &sig));
    printf("pdeathsig %d\n", sig);
    show("set pdeathsig 9", prctl(PR_SET_PDEATHSIG, 9));
    prctl(PR_GET_PDEATHSIG, &sig);
    printf("pdeathsig %d\n", sig);
    show("set pdeathsig 65", prctl(PR_SET_PDEATHSIG, 65));

    long slack = prctl(PR_GET_TIMERSLACK);
    printf("timer slack positive: %s\n", slack > 0 ? "yes" : "no");
    show("set timer slack 1000", prctl(PR_SET_TIMERSLACK, 1000));
    show("get timer slack", prctl(PR_GET_TIMERSLACK));
    prctl(PR_SET_TIMERSLACK, 0);
    printf("slack reset to the default: %s\n", prctl(PR_GET_TIMERSLACK) == slack ? "yes" : "no");

    show("unknown option 12345", prctl(12345, 0, 0, 0, 0));
    return 0;
}
