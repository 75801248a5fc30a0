/* vecregs: keeps known values live in xmm8-15 (ymm8-15 with AVX; zmm8-31 with AVX-512) for COUNT ticks of
   INTERVAL_MS (raw nanosleep + write, "tick I ok"), checking every bit after each tick; a save/restore or failover in
   between must carry them. The registers are loaded and read only by inline asm and the program never lets the
   compiler use a vector register (general-regs-only, no libc after the start), so nothing can spill them.
   Run: vecregs COUNT INTERVAL_MS. Prints "checking xmm|ymm|zmm" first; exit 0 with "vector registers intact", or 1
   with the first register that changed. */
#include <stdint.h>

#define ATTR __attribute__((target("general-regs-only"), noinline))

static unsigned char expected[32][64] __attribute__((aligned(64)));
static unsigned char actual[32][64] __attribute__((aligned(64)));

ATTR static long sys3(long n, long a, long b, long c)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

ATTR static void out(const char *s)
{
    long n = 0;
    while (s[n]) n++;
    sys3(1, 1, (long)s, n);
}

ATTR static void out_num(const char *prefix, long v, const char *suffix)
{
    char buf[64];
    int n = 0;
    for (const char *p = prefix; *p; p++) buf[n++] = *p;
    char digits[24];
    int d = 0;
    do { digits[d++] = (char)('0' + v % 10); v /= 10; } while (v > 0);
    while (d > 0) buf[n++] = digits[--d];
    for (const char *p = suffix; *p; p++) buf[n++] = *p;
    sys3(1, 1, (long)buf, n);
}

ATTR static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

/* 0: xmm only, 1: ymm, 2: zmm */
ATTR static int width(void)
{
    uint32_t r[4];
    cpuid(1, 0, r);
    if (!(r[2] & (1u << 27)) || !(r[2] & (1u << 28))) return 0; /* OSXSAVE, AVX */
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 6) != 6) return 0;
    cpuid(0, 0, r);
    if (r[0] < 7) return 1;
    cpuid(7, 0, r);
    if ((r[1] & (1u << 16)) && (lo & 0xe6) == 0xe6) return 2; /* AVX512F, opmask + ZMM_Hi256 + Hi16_ZMM */
    return 1;
}

#define X8_15(op) op(8) op(9) op(10) op(11) op(12) op(13) op(14) op(15)
#define X16_31(op) op(16) op(17) op(18) op(19) op(20) op(21) op(22) op(23) \
    op(24) op(25) op(26) op(27) op(28) op(29) op(30) op(31)
#define LOADX(n) "movdqu " #n "*64(%0), %%xmm" #n "\n\t"
#define STOREX(n) "movdqu %%xmm" #n ", " #n "*64(%0)\n\t"
#define LOADY(n) "vmovdqu " #n "*64(%0), %%ymm" #n "\n\t"
#define STOREY(n) "vmovdqu %%ymm" #n ", " #n "*64(%0)\n\t"
#define LOADZ(n) "vmovdqu64 " #n "*64(%0), %%zmm" #n "\n\t"
#define STOREZ(n) "vmovdqu64 %%zmm" #n ", " #n "*64(%0)\n\t"

ATTR static void load(int w)
{
    if (w == 2) __asm__ volatile(X8_15(LOADZ) X16_31(LOADZ) : : "r"(expected) : "memory");
    else if (w == 1) __asm__ volatile(X8_15(LOADY) : : "r"(expected) : "memory");
    else __asm__ volatile(X8_15(LOADX) : : "r"(expected) : "memory");
}

ATTR static void store(int w)
{
    if (w == 2) __asm__ volatile(X8_15(STOREZ) X16_31(STOREZ) : : "r"(actual) : "memory");
    else if (w == 1) __asm__ volatile(X8_15(STOREY) : : "r"(actual) : "memory");
    else __asm__ volatile(X8_15(STOREX) : : "r"(actual) : "memory");
}

/* The first register (8..31) whose checked bytes differ, or 0. */
ATTR static int first_changed(int w)
{
    int bytes = w == 2 ? 64 : w == 1 ? 32 : 16, last = w == 2 ? 31 : 15;
    for (int reg = 8; reg <= last; reg++)
        for (int i = 0; i < bytes; i++)
            if (((volatile unsigned char *)actual[reg])[i] != expected[reg][i]) return reg;
    return 0;
}

ATTR int main(int argc, char **argv)
{
    if (argc != 3) { out("usage: vecregs COUNT INTERVAL_MS\n"); return 2; }
    long count = 0, ms = 0;
    for (const char *p = argv[1]; *p; p++) count = count * 10 + (*p - '0');
    for (const char *p = argv[2]; *p; p++) ms = ms * 10 + (*p - '0');
    for (int reg = 0; reg < 32; reg++)
        for (int i = 0; i < 64; i++) ((volatile unsigned char *)expected[reg])[i] = (unsigned char)(reg * 97 + i * 31 + 0x5a);

    int w = width();
    out(w == 2 ? "checking zmm\n" : w == 1 ? "checking ymm\n" : "checking xmm\n");
    load(w);
    struct { long sec, nsec; } ts = { ms / 1000, (ms % 1000) * 1000000 };
    for (long i = 1; i <= count; i++) {
        sys3(35, (long)&ts, 0, 0); /* nanosleep */
        store(w);
        int reg = first_changed(w);
        if (reg) {
            out_num(w == 2 ? "zmm" : w == 1 ? "ymm" : "xmm", reg, " changed\n");
            return 1;
        }
        out_num("tick ", i, " ok\n");
    }
    out("vector registers intact\n");
    return 0;
}
