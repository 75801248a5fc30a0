/* sigvec: the vector registers and MXCSR across a signal handler. Known values sit in ymm0-15 (xmm0-15 without AVX)
   and MXCSR rounds toward zero when the program signals itself (tgkill inside one asm block); the handler checks its
   frame as Linux lays it out (fpstate pointer in the ucontext, FP_XSTATE_MAGIC1/2, sizes, xmm0 and the upper half of
   ymm0 where XSAVE puts them), sees the FPU reset (default MXCSR), clobbers every vector register and MXCSR, and
   changes xmm1 in the frame; after rt_sigreturn every register is as before except xmm1, which has the frame's new value.
   Run: sigvec (no args). */
#define _GNU_SOURCE
#include <cpuid.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef FP_XSTATE_MAGIC1
#define FP_XSTATE_MAGIC1 0x46505853u
#endif
#ifndef FP_XSTATE_MAGIC2
#define FP_XSTATE_MAGIC2 0x46505845u
#endif

static unsigned char in[16][32] __attribute__((aligned(32)));
static unsigned char out[16][32] __attribute__((aligned(32)));
static unsigned char newxmm1[16];
static int avx;
static unsigned avx_offset;
static volatile int magic1, magic2, sizes, xmm0_in_frame, ymm0_in_frame, handler_mxcsr_default, ran;

static const char *yesno(int b) { return b ? "yes" : "no"; }

static void on_usr1(int sig, siginfo_t *si, void *ctx)
{
    (void)sig; (void)si;
    ucontext_t *uc = ctx;
    unsigned char *fp = (unsigned char *)uc->uc_mcontext.fpregs;
    uint32_t m1, ext, xsize, m2;
    memcpy(&m1, fp + 464, 4);
    memcpy(&ext, fp + 468, 4);
    memcpy(&xsize, fp + 480, 4);
    magic1 = m1 == FP_XSTATE_MAGIC1;
    sizes = ext == xsize + 4 && xsize >= 576;
    memcpy(&m2, fp + xsize, 4);
    magic2 = m2 == FP_XSTATE_MAGIC2;
    xmm0_in_frame = memcmp(fp + 160, in[0], 16) == 0;
    ymm0_in_frame = !avx || memcmp(fp + avx_offset, in[0] + 16, 16) == 0;
    unsigned mx;
    __asm__ volatile("stmxcsr %0" : "=m"(mx));
    handler_mxcsr_default = mx == 0x1f80;
    /* clobber everything, then change xmm1 in the frame */
    unsigned rounding_up = 0x5f80;
    if (avx)
        __asm__ volatile("vpcmpeqb %%ymm0, %%ymm0, %%ymm0\n"
                         "vmovdqa %%ymm0, %%ymm1\n vmovdqa %%ymm0, %%ymm2\n vmovdqa %%ymm0, %%ymm3\n vmovdqa %%ymm0, %%ymm4\n"
                         "vmovdqa %%ymm0, %%ymm5\n vmovdqa %%ymm0, %%ymm6\n vmovdqa %%ymm0, %%ymm7\n vmovdqa %%ymm0, %%ymm8\n"
                         "vmovdqa %%ymm0, %%ymm9\n vmovdqa %%ymm0, %%ymm10\n vmovdqa %%ymm0, %%ymm11\n vmovdqa %%ymm0, %%ymm12\n"
                         "vmovdqa %%ymm0, %%ymm13\n vmovdqa %%ymm0, %%ymm14\n vmovdqa %%ymm0, %%ymm15\n"
                         ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
                           "xmm12", "xmm13", "xmm14", "xmm15");
    else
        __asm__ volatile("pcmpeqb %%xmm0, %%xmm0\n"
                         "movdqa %%xmm0, %%xmm1\n movdqa %%xmm0, %%xmm2\n movdqa %%xmm0, %%xmm3\n movdqa %%xmm0, %%xmm4\n"
                         "movdqa %%xmm0, %%xmm5\n movdqa %%xmm0, %%xmm6\n movdqa %%xmm0, %%xmm7\n movdqa %%xmm0, %%xmm8\n"
                         "movdqa %%xmm0, %%xmm9\n movdqa %%xmm0, %%xmm10\n movdqa %%xmm0, %%xmm11\n movdqa %%xmm0, %%xmm12\n"
                         "movdqa %%xmm0, %%xmm13\n movdqa %%xmm0, %%xmm14\n movdqa %%xmm0, %%xmm15\n"
                         ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
                           "xmm12", "xmm13", "xmm14", "xmm15");
    __asm__ volatile("ldmxcsr %0" ::"m"(rounding_up));
    memcpy(fp + 160 + 16, newxmm1, 16);
    ran++;
}

#define LOADY(i) "vmovdqa " #i "*32(%[in]), %%ymm" #i "\n"
#define STOREY(i) "vmovdqa %%ymm" #i ", " #i "*32(%[out])\n"
#define LOADX(i) "movdqa " #i "*32(%[in]), %%xmm" #i "\n"
#define STOREX(i) "movdqa %%xmm" #i ", " #i "*32(%[out])\n"
#define ALL(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)

__attribute__((noinline)) static unsigned run(long pid, long tid)
{
    unsigned zero_rounding = 0x7f80, after;
    register long rdi __asm__("rdi") = pid, rsi __asm__("rsi") = tid, rdx __asm__("rdx") = SIGUSR1;
    long rax = SYS_tgkill;
    if (avx)
        __asm__ volatile("ldmxcsr %[rz]\n" ALL(LOADY) "syscall\n" ALL(STOREY) "stmxcsr %[after]\n"
                         : "+a"(rax), [after] "=m"(after)
                         : [in] "r"(in), [out] "r"(out), [rz] "m"(zero_rounding), "r"(rdi), "r"(rsi), "r"(rdx)
                         : "rcx", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
                           "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
    else
        __asm__ volatile("ldmxcsr %[rz]\n" ALL(LOADX) "syscall\n" ALL(STOREX) "stmxcsr %[after]\n"
                         : "+a"(rax), [after] "=m"(after)
                         : [in] "r"(in), [out] "r"(out), [rz] "m"(zero_rounding), "r"(rdi), "r"(rsi), "r"(rdx)
                         : "rcx", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
                           "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
    unsigned back = 0x1f80;
    __asm__ volatile("ldmxcsr %0" ::"m"(back));
    return after;
}

int main(void)
{
    unsigned a, b, c, d;
    __cpuid(1, a, b, c, d);
    int osxsave = (c >> 27) & 1;
    avx = ((c >> 28) & 1) && osxsave;
    if (avx) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        avx = (lo & 6) == 6;
    }
    if (avx) {
        __cpuid_count(0xd, 2, a, b, c, d);
        avx_offset = b;
    }
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 32; j++) in[i][j] = (unsigned char)(i * 37 + j * 11 + 5);
    for (int j = 0; j < 16; j++) newxmm1[j] = (unsigned char)(0xA0 + j);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);

    unsigned mx = run(getpid(), syscall(SYS_gettid));
    int width = avx ? 32 : 16;
    printf("checking %s\n", avx ? "ymm" : "xmm");
    printf("handler ran %d\n", ran);
    printf("frame: magic1 %s magic2 %s sizes %s xmm0 %s ymm0 upper %s\n", yesno(magic1), yesno(magic2), yesno(sizes), yesno(xmm0_in_frame), yesno(ymm0_in_frame));
    printf("handler started with default MXCSR %s\n", yesno(handler_mxcsr_default));
    printf("MXCSR back (round toward zero) %s\n", yesno((mx & 0x6000) == 0x6000));
    int bad = -1;
    for (int i = 0; i < 16 && bad < 0; i++) {
        if (i == 1) {
            if (memcmp(out[1], newxmm1, 16) != 0 || (avx && memcmp(out[1] + 16, in[1] + 16, 16) != 0)) bad = 1;
        } else if (memcmp(out[i], in[i], width) != 0) {
            bad = i;
        }
    }
    printf("xmm1 from the frame %s\n", yesno(memcmp(out[1], newxmm1, 16) == 0));
    if (bad < 0) printf("vector registers intact\n");
    else printf("register %d changed\n", bad);
    return bad < 0 ? 0 : 1;
}
