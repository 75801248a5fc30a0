/* tls: __thread variables (.tdata initialised, .tbss zeroed, 64-byte aligned), errno is thread-local, %fs:0 is the thread pointer (arch_prctl set FS). Run: tls (no args, no stdin). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

static __thread int tdata_int = 42;
static __thread char tdata_str[16] = "thread-local";
static __thread long tbss_arr[512];
static __thread _Alignas(64) unsigned char aligned64[64] = { 1 };
static __thread uint64_t counter;

__attribute__((noinline)) static void bump(int n)
{
    for (int i = 0; i < n; i++) {
        counter += (uint64_t)i * 3 + 1;
        tbss_arr[i % 512] += i;
    }
}

__attribute__((noinline)) static int *errno_addr(void) { return &errno; }

int main(void)
{
    printf("tdata int %d\n", tdata_int);
    printf("tdata str %s\n", tdata_str);
    int zero = 1;
    for (int i = 0; i < 512; i++) if (tbss_arr[i]) zero = 0;
    printf("tbss zeroed %s\n", zero ? "yes" : "no");
    printf("aligned64 on 64 bytes %s, first byte %d\n", ((uintptr_t)aligned64 & 63) == 0 ? "yes" : "no", aligned64[0]);

    tdata_int += 58;
    bump(100000);
    long sum = 0;
    for (int i = 0; i < 512; i++) sum += tbss_arr[i];
    printf("tdata int after write %d\n", tdata_int);
    printf("counter %llu tbss sum %ld\n", (unsigned long long)counter, sum);

    /* errno lives in TLS: a failing syscall sets it, a successful one leaves it */
    errno = 0;
    int rc = close(-1);
    int e = errno;
    printf("close(-1) = %d errno EBADF %s\n", rc, e == EBADF ? "yes" : "no");
    getpid();
    printf("errno kept after successful call %s\n", errno == EBADF ? "yes" : "no");
    printf("&errno stable %s\n", errno_addr() == &errno ? "yes" : "no");

    /* x86-64 TLS ABI: the word at %fs:0 points to itself (the TCB) and TLS data lies below it */
    uintptr_t self;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(self));
    printf("fs:0 self-pointer non-null %s\n", self ? "yes" : "no");
    printf("tls data below thread pointer %s\n", (uintptr_t)&tdata_int < self && (uintptr_t)&tbss_arr[0] < self ? "yes" : "no");
    return 0;
}
