/* An idle guest that first fills MIB of memory: for save/restore and migration benchmarks. Usage: idle MIB SECONDS */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    size_t n = (size_t)atol(argv[1]) << 20;
    unsigned char *m = malloc(n);
    for (size_t i = 0; i < n; i++) m[i] = (unsigned char)(i * 2654435761u >> 13);
    sleep(atoi(argv[2]));
    return m[n / 2] == 7;
}
