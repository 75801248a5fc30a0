/* fpmath: double/float/long double math and printf formatting, rounding modes kept across syscalls, SSE and (if the CPU has it) AVX registers preserved across a syscall, large memcpy/memmove/memset/strlen/memchr (glibc uses AVX2/EVEX variants). Run: fpmath (no args, no stdin). */
#include <fenv.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static uint64_t fnv(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static volatile double one = 1.0, three = 3.0, two = 2.0;

/* xmm0..xmm15 hold a pattern across a raw syscall; returns 1 if all survived */
__attribute__((noinline)) static int sse_survives_syscall(void)
{
    static const uint32_t pat[4] = { 0x01234567u, 0x89abcdefu, 0xfedcba98u, 0x76543210u };
    uint32_t out[4];
    long nr = SYS_getppid, ret;
    int ok = 1;
    __asm__ volatile(
        "movdqu (%[pat]), %%xmm0\n\t"
        "movdqa %%xmm0, %%xmm8\n\t"
        "movdqa %%xmm0, %%xmm15\n\t"
        "syscall\n\t"
        "pxor %%xmm8, %%xmm0\n\t"
        "por %%xmm15, %%xmm0\n\t"
        "pxor (%[pat]), %%xmm0\n\t"
        "movdqu %%xmm0, (%[out])\n\t"
        : "=a"(ret)
        : "a"(nr), [pat] "r"(pat), [out] "r"(out)
        : "rcx", "r11", "memory", "xmm0", "xmm8", "xmm15");
    /* (x ^ x) | x ^ x == 0 */
    for (int i = 0; i < 4; i++) if (out[i] != 0) ok = 0;
    return ok && ret >= 0;
}

__attribute__((noinline, target("avx"))) static int avx_survives_syscall(void)
{
    static const uint64_t pat[4] = { 0x0123456789abcdefull, 0xfedcba9876543210ull, 0x1111222233334444ull, 0x5555666677778888ull };
    uint64_t out[4];
    long nr = SYS_getppid, ret;
    __asm__ volatile(
        "vmovdqu (%[pat]), %%ymm1\n\t"
        "vmovdqa %%ymm1, %%ymm9\n\t"
        "syscall\n\t"
        "vmovdqu %%ymm9, (%[out])\n\t"
        "vzeroupper\n\t"
        : "=a"(ret)
        : "a"(nr), [pat] "r"(pat), [out] "r"(out)
        : "rcx", "r11", "memory", "xmm1", "xmm9");
    return memcmp(out, pat, sizeof pat) == 0 && ret >= 0;
}

__attribute__((noinline, target("avx2"))) static double dot_avx2(const double *a, const double *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

__attribute__((noinline)) static double dot_plain(const double *a, const double *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

int main(void)
{
    printf("sqrt(2) %.17g\n", sqrt(2.0));
    printf("sin(1) %.17g cos(1) %.17g\n", sin(1.0), cos(1.0));
    printf("exp(1) %.17g log(10) %.17g\n", exp(1.0), log(10.0));
    printf("pow(2,0.5) %.17g atan2(1,2) %.17g\n", pow(2.0, 0.5), atan2(1.0, 2.0));
    printf("fma(0.1,10,-1) %.17g\n", fma(0.1, 10.0, -1.0));
    printf("%%a of 0.1: %a\n", 0.1);
    printf("%%e %e %%g %g %%f %f\n", 6.02214076e23, 1e-300 * 1e-10, -0.0);
    printf("float %.9g\n", (double)(1.0f / 3.0f));
    printf("long double 1/3 %.21Lg\n", 1.0L / 3.0L);
    printf("inf %f -inf %f nan is nan %s\n", INFINITY, -INFINITY, isnan(NAN) ? "yes" : "no");
    printf("denormal %g\n", 4.9406564584124654e-324);
    printf("strtod(\"2.5e-3\") %.17g\n", strtod("2.5e-3", NULL));

    double s = 0;
    for (int i = 1; i <= 1000000; i++) s += 1.0 / ((double)i * i);
    printf("sum 1/i^2 to 1e6 %.17g\n", s);

    /* rounding mode (MXCSR and x87 control word) stays set across syscalls */
    static const int modes[] = { FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO };
    static const char *names[] = { "nearest", "upward", "downward", "towardzero" };
    for (int m = 0; m < 4; m++) {
        fesetround(modes[m]);
        syscall(SYS_getppid);
        double q = one / three;
        long double lq = (long double)one / (long double)three;
        syscall(SYS_getppid);
        double r = sqrt(two);
        fesetround(FE_TONEAREST);
        printf("round %s: 1/3 %a sqrt2 %a long 1/3 %La\n", names[m], q, r, lq);
    }

    printf("sse regs survive syscall %s\n", sse_survives_syscall() ? "yes" : "no");
    int avx_ok = 1;
    if (__builtin_cpu_supports("avx")) avx_ok = avx_survives_syscall();
    printf("avx regs survive syscall (when the cpu has avx) %s\n", avx_ok ? "yes" : "no");

    enum { N = 4096 };
    static double a[N], b[N];
    for (int i = 0; i < N; i++) { a[i] = (double)(i % 17); b[i] = (double)(i % 13) - 6; }
    double d = __builtin_cpu_supports("avx2") ? dot_avx2(a, b, N) : dot_plain(a, b, N);
    printf("dot %.1f plain %.1f\n", d, dot_plain(a, b, N));

    /* big memory primitives */
    size_t len = 8u << 20;
    unsigned char *src = malloc(len), *dst = malloc(len);
    if (!src || !dst) { printf("allocation failed\n"); return 3; }
    uint32_t x = 12345;
    for (size_t i = 0; i < len; i++) { x = x * 1103515245u + 12345u; src[i] = (unsigned char)(x >> 16); }
    memcpy(dst, src, len);
    printf("memcpy 8 MiB equal %s hash %016llx\n", memcmp(dst, src, len) == 0 ? "yes" : "no", (unsigned long long)fnv(dst, len));
    memmove(dst + 4097, dst, len - 4097);
    printf("memmove overlapping hash %016llx\n", (unsigned long long)fnv(dst, len));
    memmove(dst, dst + 33, len - 33);
    printf("memmove down hash %016llx\n", (unsigned long long)fnv(dst, len));
    memset(dst + 100, 0x3c, len - 200);
    printf("memset hash %016llx\n", (unsigned long long)fnv(dst, len));
    for (size_t i = 0; i < len; i++) if (!src[i]) src[i] = 1;
    src[len - 1] = 0;
    printf("strlen %zu\n", strlen((char *)src));
    unsigned char needle = src[len - 12345];
    unsigned char *hit = memchr(src + len - 20000, needle, 20000);
    printf("memchr finds byte at or before offset %s\n", hit && hit <= src + len - 12345 ? "yes" : "no");
    printf("memcmp differs sign %d\n", memcmp("abcd", "abce", 4) < 0 ? -1 : 1);
    free(src);
    free(dst);
    return 0;
}
