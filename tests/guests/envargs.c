/* envargs: echoes argc, every argv[i] (argv[0] included) and every environ entry in order, plus getenv lookups and auxv sanity. Run: envargs [args...] with --env K=V... (the guest must see only those). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

extern char **environ;

int main(int argc, char **argv)
{
    printf("argc %d\n", argc);
    for (int i = 0; i < argc; i++) printf("argv[%d] <%s> len %zu\n", i, argv[i], strlen(argv[i]));
    printf("argv[argc] is NULL %s\n", argv[argc] == NULL ? "yes" : "no");
    int n = 0;
    for (char **e = environ; *e; e++, n++) printf("env[%d] <%s>\n", n, *e);
    printf("envc %d\n", n);
    const char *keys[] = { "REMUS_A", "REMUS_EMPTY", "PATH", "HOME", "USER", "LD_PRELOAD" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = getenv(keys[i]);
        if (v) printf("getenv %s = <%s>\n", keys[i], v);
        else printf("getenv %s unset\n", keys[i]);
    }
    printf("setenv works %s\n", setenv("REMUS_NEW", "x", 1) == 0 && strcmp(getenv("REMUS_NEW"), "x") == 0 ? "yes" : "no");
    printf("AT_PAGESZ %lu\n", getauxval(AT_PAGESZ));
    printf("AT_ENTRY set %s\n", getauxval(AT_ENTRY) ? "yes" : "no");
    printf("AT_PHDR set %s\n", getauxval(AT_PHDR) ? "yes" : "no");
    return 0;
}
