/* A sample guest: greets, shows its arguments and environment, does a little work, and exits with status 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

int main(int argc, char **argv) {
    struct utsname u;
    uname(&u);
    printf("Hello from a Remus domain! (%s %s)\n", u.sysname, u.machine);
    for (int i = 0; i < argc; i++) printf("  argv[%d] = %s\n", i, argv[i]);
    const char *who = getenv("GREETING");
    printf("  GREETING = %s\n", who ? who : "(not set)");
    size_t n = 32 << 20;
    unsigned char *buf = malloc(n);
    memset(buf, 0xA5, n);
    unsigned long sum = 0;
    for (size_t i = 0; i < n; i += 4096) sum += buf[i];
    printf("  touched %zu MiB of memory, checksum %lu\n", n >> 20, sum);
    free(buf);
    return 0;
}
