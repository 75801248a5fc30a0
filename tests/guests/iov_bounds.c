/* readv/writev with lengths a program should not give: a 2 GiB iov_len over one readable page (a pipe takes what
   can be read, a short count), a negative length (EINVAL), a range past the top of user space (EFAULT), too many
   iovecs (EINVAL), and a readv whose buffer claims more than there is. Compared with Linux. Found by sysfuzz.c: the
   VMM allocated what writev's iov_len claimed and died of it. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>
static void show(const char *what, long r) { printf("%s: %ld %s\n", what, r, r < 0 ? strerror(errno) : ""); }
int main(void) {
    int p[2];
    if (pipe2(p, O_NONBLOCK)) return 1;
    char *m = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(m + 4096, 4096);
    memset(m, 'x', 4096);
    struct iovec v[2] = {{m, 0x7fffffff}, {m, 1}};
    show("writev 2 GiB over one page", writev(p[1], v, 1));
    char drain[8192];
    show("read back", read(p[0], drain, sizeof drain));
    v[0].iov_len = (size_t)-1;
    show("writev negative length", writev(p[1], v, 1));
    v[0].iov_base = (void *)0x7ffffffff000; v[0].iov_len = 0x200000;
    show("writev past user space", writev(p[1], v, 1));
    v[0].iov_base = m; v[0].iov_len = 0x7fffffff; v[1].iov_base = m; v[1].iov_len = 0x7fffffff;
    show("writev two 2 GiB iovecs", writev(p[1], v, 2));
    show("read back", read(p[0], drain, sizeof drain));
    static struct iovec many[1025];
    for (int i = 0; i < 1025; i++) { many[i].iov_base = m; many[i].iov_len = 1; }
    show("writev 1025 iovecs", writev(p[1], many, 1025));
    write(p[1], "0123456789", 10);
    v[0].iov_base = m; v[0].iov_len = 0x7fffffff;
    show("readv 2 GiB into one page", readv(p[0], v, 1));
    printf("%.10s\n", m);
    /* more in the pipe than the buffer holds: the rest stays in the pipe */
    memset(m, 'y', 4096);
    show("writev one page", writev(p[1], v, 0) + write(p[1], m, 4096) + write(p[1], m, 100));
    show("readv 2 GiB into one page, a page and more waiting", readv(p[0], v, 1));
    show("read what was left", read(p[0], drain, sizeof drain));
    show("read 2 GiB into one page", read(p[0], m, 0x7fffffff));
    write(p[1], "abc", 3);
    show("read 2 GiB into one page", read(p[0], m, 0x7fffffff));
    return 0;
}
