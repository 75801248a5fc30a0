/* tlb-flush-probe: which ways of dropping a translation the VMM removed from the guest's page tables work on this
 * host's KVM, and what each costs. The guest is Remus's KVM layout in miniature (GDT, TSS with the port-0x20 I/O
 * bitmap, IDT with out-0x40+n exception stubs, the syscall stub at LSTAR returning with iretq, identity map with
 * the first 2 MiB in 4 KiB pages) plus a 4 KiB page table for 0x400000-0x5fffff. The program loops:
 *     loop: mov rax, [T] (or mov [T], rax); mov eax, 1; syscall; jmp loop        (T = 0x500000)
 * At each syscall exit the VMM takes the right away in T's PTE (not present, or read-only for "write"), applies
 * one method, and runs again: a #PF exit means the method worked, the next syscall exit means the vCPU used a stale
 * translation. After a #PF the PTE is restored (no flush needed to add a right) and the access retried.
 *   gcc -O2 -o /tmp/tlb-flush-probe tlb-flush-probe.c && /tmp/tlb-flush-probe [iterations] [read|write] [method]
 *   /tmp/tlb-flush-probe relink    (an upper-level entry pointed at another table: see relink())
 *   /tmp/tlb-flush-probe range [rounds]   (cost of zapping 1-512 pages, and of the refaults: see range())
 * Prints per method: worked/stale counts, the VMM's own time for the method, and the time of the KVM_RUN that
 * follows (which holds guest-side work and refaults).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MEM (64ULL << 20)
#define GDT 0x1000
#define TSS 0x1800
#define IDT 0x2000
#define DATA 0x3000
#define STUB 0x4000
#define RESUME (STUB + 0x1f)
#define FLUSH_STUBS 0x4200
#define EXC_STUBS 0x4800
#define SYSSTACK 0x7000
#define PML4 0x10000
#define PDPT 0x11000
#define LOWPT 0x12000
#define PML4ALT 0x13000
#define PT2 0x14000
#define PD 0x100000
#define CODE 0x400000ULL
#define T 0x500000ULL
#define PTE_T (PT2 + ((T >> 12) & 511) * 8)
#define STACKTOP 0x5ff000ULL
#define HC_TLB_FLUSH 0x17088203u
#define HC_TLB_FLUSH_CURRENT 0x17088204u
#define HC_TLB_INVLPG 0x17088205u

static uint8_t *mem;
static int vm, vcpu;
static struct kvm_run *run;
static struct kvm_userspace_memory_region region;

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static uint64_t *q(uint64_t a) { return (uint64_t *)(mem + a); }
static void die(const char *w) { perror(w); exit(1); }

static void put(uint64_t at, const uint8_t *b, size_t n) { memcpy(mem + at, b, n); }
/* jmp rel32 from `at` (5 bytes) to `to` */
static void jmp(uint64_t at, uint64_t to)
{
    int32_t rel = (int32_t)(to - (at + 5));
    mem[at] = 0xe9;
    memcpy(mem + at + 1, &rel, 4);
}

static int has_error(int v) { return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30; }

/* Guest-side flush stubs (in the user read-only stub page); each ends by jumping to the resume iretq. */
enum { S_INVLPG = FLUSH_STUBS, S_CR3 = FLUSH_STUBS + 0x40, S_HC = FLUSH_STUBS + 0x80, S_HC_CUR = FLUSH_STUBS + 0xc0,
       S_HC_INVLPG = FLUSH_STUBS + 0x100, S_WRITE_PTE = FLUSH_STUBS + 0x140, S_CR4 = FLUSH_STUBS + 0x180 };

static void build(int write_mode, int pt_user)
{
    memset(mem, 0, 2 << 20);
    /* page tables */
    *q(PML4) = PDPT | 0x27; *q(PML4ALT) = PDPT | 0x27; *q(PDPT) = PD | 0x27;
    for (uint64_t e = 0; e < 512; e++) {
        uint64_t a = e << 12, f = 0x63; /* supervisor */
        if (a == DATA || a == SYSSTACK - 0x1000) f = 0x67;
        if (a == STUB) f = 0x65;
        if (a == PT2 && pt_user) f = 0x67;
        *q(LOWPT + e * 8) = a | f;
    }
    for (uint64_t e = 0; e < 512; e++) *q(PT2 + e * 8) = (CODE + (e << 12)) | 0x67;
    for (uint64_t d = 0; d < MEM >> 21; d++)
        *q(PD + d * 8) = d == 0 ? LOWPT | 0x27 : d == 2 ? PT2 | 0x27 : (d << 21) | 0xe7;
    /* GDT */
    uint64_t gdt[] = {0, 0x00af9b000000ffffULL, 0x00cf93000000ffffULL, 0x00cff3000000ffffULL, 0x00affb000000ffffULL};
    memcpy(mem + GDT, gdt, sizeof gdt);
    uint64_t lim = 104 + 8, base = TSS;
    q(GDT)[5] = (lim & 0xffff) | ((base & 0xffffff) << 16) | (0x8bULL << 40) | (((lim >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
    q(GDT)[6] = base >> 32;
    /* TSS + I/O bitmap allowing port 0x20 only */
    *(uint64_t *)(mem + TSS + 4) = 0xd000;
    *(uint64_t *)(mem + TSS + 36) = 0x9000;
    *(uint64_t *)(mem + TSS + 44) = 0xb000;
    *(uint16_t *)(mem + TSS + 102) = 104;
    memset(mem + TSS + 104, 0xff, 9);
    mem[TSS + 104 + 4] &= ~1;
    /* IDT */
    for (int v = 0; v < 32; v++) {
        uint64_t off = EXC_STUBS + v * 16;
        int ist = v == 8 ? 2 : 1, dpl = (v == 3 || v == 4) ? 3 : 0;
        q(IDT)[v * 2] = (off & 0xffff) | (0x08ULL << 16) | ((uint64_t)ist << 32) | ((uint64_t)(0x80 | (dpl << 5) | 0xe) << 40) | (((off >> 16) & 0xffff) << 48);
        q(IDT)[v * 2 + 1] = off >> 32;
    }
    /* syscall stub */
    memset(mem + STUB, 0xf4, 4096);
    uint8_t sys[] = {0x48, 0x89, 0x24, 0x25, 0x00, 0x30, 0x00, 0x00, 0x48, 0xc7, 0xc4, 0x00, 0x70, 0x00, 0x00, 0x6a, 0x1b,
                     0xff, 0x34, 0x25, 0x00, 0x30, 0x00, 0x00, 0x41, 0x53, 0x6a, 0x23, 0x51, 0xe6, 0x20, 0x48, 0xcf};
    put(STUB, sys, sizeof sys);
    for (int v = 0; v < 32; v++) {
        uint8_t *s = mem + EXC_STUBS + v * 16;
        int i = 0;
        s[i++] = 0xe6; s[i++] = 0x40 + v;
        if (has_error(v)) { s[i++] = 0x48; s[i++] = 0x83; s[i++] = 0xc4; s[i++] = 0x08; }
        s[i++] = 0x48; s[i++] = 0xcf;
    }
    /* flush stubs */
    { uint8_t b[] = {0x0f, 0x01, 0x3c, 0x25, 0x00, 0x00, 0x50, 0x00}; put(S_INVLPG, b, sizeof b); jmp(S_INVLPG + sizeof b, RESUME); }
    { uint8_t b[] = {0x0f, 0x20, 0xd8, 0x0f, 0x22, 0xd8}; put(S_CR3, b, sizeof b); jmp(S_CR3 + sizeof b, RESUME); }
    { uint8_t b[] = {0x0f, 0x20, 0xe0, 0x48, 0x35, 0x80, 0, 0, 0, 0x0f, 0x22, 0xe0, 0x48, 0x35, 0x80, 0, 0, 0, 0x0f, 0x22, 0xe0};
      put(S_CR4, b, sizeof b); jmp(S_CR4 + sizeof b, RESUME); } /* mov rax,cr4; xor rax,0x80; mov cr4,rax; twice */
    { uint8_t b[] = {0xb8, 0x03, 0x82, 0x08, 0x17, 0x0f, 0x05}; put(S_HC, b, sizeof b); jmp(S_HC + sizeof b, RESUME); }
    { uint8_t b[] = {0xb8, 0x04, 0x82, 0x08, 0x17, 0x0f, 0x05}; put(S_HC_CUR, b, sizeof b); jmp(S_HC_CUR + sizeof b, RESUME); }
    { uint8_t b[] = {0xbb, 0x00, 0x00, 0x50, 0x00, 0xb8, 0x05, 0x82, 0x08, 0x17, 0x0f, 0x05}; put(S_HC_INVLPG, b, sizeof b); jmp(S_HC_INVLPG + sizeof b, RESUME); }
    { uint8_t b[] = {0x48, 0x89, 0x04, 0x25, PTE_T & 0xff, (PTE_T >> 8) & 0xff, (PTE_T >> 16) & 0xff, 0}; put(S_WRITE_PTE, b, sizeof b); jmp(S_WRITE_PTE + sizeof b, RESUME); }
    /* the program */
    uint8_t prog_r[] = {0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x50, 0x00, 0xb8, 0x01, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xef};
    uint8_t prog_w[] = {0x48, 0x89, 0x04, 0x25, 0x00, 0x00, 0x50, 0x00, 0xb8, 0x01, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xef};
    put(CODE, write_mode ? prog_w : prog_r, sizeof prog_r);
    /* the resume frame: the vCPU starts at the stub's iretq */
    uint64_t *f = q(SYSSTACK - 40);
    f[0] = CODE; f[1] = 0x23; f[2] = 0x202; f[3] = STACKTOP; f[4] = 0x1b;
}

static void setup_vcpu(void)
{
    int kvm = open("/dev/kvm", O_RDWR);
    if (kvm < 0) die("/dev/kvm");
    vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) die("KVM_CREATE_VM");
    region = (struct kvm_userspace_memory_region){.slot = 0, .guest_phys_addr = 0, .memory_size = MEM, .userspace_addr = (uint64_t)mem};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region)) die("SET_USER_MEMORY_REGION");
    vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) die("KVM_CREATE_VCPU");
    run = mmap(NULL, ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0), PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    struct { struct kvm_cpuid2 h; struct kvm_cpuid_entry2 e[100]; } cpuid = {.h = {.nent = 100}};
    if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid)) die("GET_SUPPORTED_CPUID");
    if (ioctl(vcpu, KVM_SET_CPUID2, &cpuid)) die("SET_CPUID2");
    struct kvm_sregs s;
    ioctl(vcpu, KVM_GET_SREGS, &s);
    struct kvm_segment cs = {.limit = 0xffffffff, .selector = 0x08, .present = 1, .type = 11, .dpl = 0, .s = 1, .l = 1, .g = 1};
    struct kvm_segment ss = {.limit = 0xffffffff, .selector = 0x10, .present = 1, .type = 3, .dpl = 0, .db = 1, .s = 1, .g = 1};
    struct kvm_segment ds = {.limit = 0xffffffff, .selector = 0x1b, .present = 1, .type = 3, .dpl = 3, .db = 1, .s = 1, .g = 1};
    struct kvm_segment tr = {.base = TSS, .limit = 104 + 8, .selector = 0x28, .present = 1, .type = 11};
    s.cs = cs; s.ss = ss; s.ds = s.es = s.fs = s.gs = ds; s.tr = tr;
    s.gdt.base = GDT; s.gdt.limit = 7 * 8 - 1;
    s.idt.base = IDT; s.idt.limit = 32 * 16 - 1;
    s.cr0 = 0x80050033; s.cr3 = PML4; s.cr4 = (1 << 5) | (1 << 9) | (1 << 10); s.efer = 0x501;
    if (ioctl(vcpu, KVM_SET_SREGS, &s)) die("SET_SREGS");
    struct { struct kvm_msrs h; struct kvm_msr_entry e[4]; } msrs = {.h = {.nmsrs = 4}};
    msrs.e[0].index = 0xC0000081; msrs.e[0].data = (0x10ULL << 48) | (0x08ULL << 32);
    msrs.e[1].index = 0xC0000082; msrs.e[1].data = STUB;
    msrs.e[2].index = 0xC0000083; msrs.e[2].data = 0;
    msrs.e[3].index = 0xC0000084; msrs.e[3].data = 0x100 | 0x200 | 0x400 | 0x3000 | 0x4000 | 0x40000;
    if (ioctl(vcpu, KVM_SET_MSRS, &msrs) != 4) die("SET_MSRS");
    struct kvm_regs g = {.rip = RESUME, .rsp = SYSSTACK - 40, .rflags = 2};
    if (ioctl(vcpu, KVM_SET_REGS, &g)) die("SET_REGS");
    close(kvm);
}

/* 0: syscall exit, 1: #PF exit (other vectors abort) */
static int run_once(double *t)
{
    double t0 = now();
    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) { if (errno == EINTR) continue; die("KVM_RUN"); }
        break;
    }
    *t = now() - t0;
    if (run->exit_reason == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_OUT) {
        if (run->io.port == 0x20) return 0;
        if (run->io.port == 0x40 + 14) return 1;
        if (run->io.port >= 0x40 && run->io.port < 0x60) {
            struct kvm_sregs s; ioctl(vcpu, KVM_GET_SREGS, &s);
            printf("    exception %d, cr2 0x%llx, frame rip 0x%llx err 0x%llx\n", run->io.port - 0x40,
                   (unsigned long long)s.cr2, (unsigned long long)*q(0x9000 - 40), (unsigned long long)*q(0x9000 - 48));
            return 2;
        }
    }
    struct kvm_regs r; ioctl(vcpu, KVM_GET_REGS, &r);
    fprintf(stderr, "unexpected exit %d (port 0x%x) rip 0x%llx\n", run->exit_reason, run->io.port, (unsigned long long)r.rip);
    exit(2);
}

static void set_rip(uint64_t rip, uint64_t rax)
{
    struct kvm_regs r; ioctl(vcpu, KVM_GET_REGS, &r);
    r.rip = rip; r.rax = rax;
    if (ioctl(vcpu, KVM_SET_REGS, &r)) die("SET_REGS");
}

enum method { M_NONE, M_SREGS, M_SLOT, M_DONTNEED_T, M_DONTNEED_PT, M_MPROTECT_T, M_LOGFLAG, M_G_INVLPG, M_G_CR3, M_G_CR4,
              M_G_HC, M_G_HC_CUR, M_G_HC_INVLPG, M_G_WRITE_PTE, M_COUNT };
static const char *names[] = {"none", "KVM_SET_SREGS cr3 switch + cr4.pge flip", "memslot delete + re-add",
                              "madvise(DONTNEED) data page", "madvise(DONTNEED) page-table page", "mprotect data page ro+rw",
                              "memslot dirty-log flag on+off", "guest invlpg", "guest mov cr3", "guest cr4.pge flip x2",
                              "guest PVM_HC_TLB_FLUSH", "guest PVM_HC_TLB_FLUSH_CURRENT", "guest PVM_HC_TLB_INVLPG",
                              "guest writes the PTE"};

/* "relink": an upper-level change. Region 3 (0x600000) is mapped through table A (0x15000, identity); the program
 * reads 0x600000, then the VMM points PD[3] at table B (0x16000: region 3 -> frames at 0x1000000) and PD[4] (was a
 * 2 MiB page) at table A, zapping every frame whose translation went away (region 3's and region 4's old frames).
 * The program then reads 0x800000 (through A: expects 0x600000's value) and 0x600000 again (through B: expects
 * 0x1000000's value). full=1 also deletes and re-adds the memory slot. */
static void relink(int full)
{
    build(0, 0);
    uint64_t A = 0x15000, B = 0x16000;
    for (uint64_t e = 0; e < 512; e++) { *q(A + e * 8) = (0x600000 + (e << 12)) | 0x67; *q(B + e * 8) = (0x1000000 + (e << 12)) | 0x67; }
    *q(PD + 3 * 8) = A | 0x27;
    *q(0x600000) = 0xf0f0f0f0; *q(0x800000) = 0x80808080; *q(0x1000000) = 0x60606060;
    /* mov rbx,[0x600000]; syscall; mov rsi,[0x800000]; syscall; mov rdx,[0x600000]; syscall; jmp $ */
    uint8_t prog[] = {0x48, 0x8b, 0x1c, 0x25, 0x00, 0x00, 0x60, 0x00, 0x0f, 0x05,
                      0x48, 0x8b, 0x34, 0x25, 0x00, 0x00, 0x80, 0x00, 0x0f, 0x05,
                      0x48, 0x8b, 0x14, 0x25, 0x00, 0x00, 0x60, 0x00, 0x0f, 0x05, 0xeb, 0xfe};
    put(CODE, prog, sizeof prog);
    setup_vcpu();
    double t;
    struct kvm_regs r;
    if (run_once(&t) != 0) { printf("relink: no first syscall\n"); return; }
    *q(PD + 3 * 8) = B | 0x27;
    *q(PD + 4 * 8) = A | 0x27;
    madvise(mem + 0x600000, 2 << 20, MADV_DONTNEED);
    madvise(mem + 0x800000, 2 << 20, MADV_DONTNEED);
    if (full) {
        struct kvm_userspace_memory_region d = region; d.memory_size = 0;
        ioctl(vm, KVM_SET_USER_MEMORY_REGION, &d);
        ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region);
    }
    if (run_once(&t) != 0) { printf("relink: no second syscall\n"); return; }
    if (run_once(&t) != 0) { printf("relink: no third syscall\n"); return; }
    ioctl(vcpu, KVM_GET_REGS, &r);
    printf("relink%s: [0x800000] via A = 0x%llx (want 0xf0f0f0f0), [0x600000] via B = 0x%llx (want 0x60606060): %s\n",
           full ? " + memslot delete/re-add" : " + zap of the old frames", (unsigned long long)r.rsi, (unsigned long long)r.rdx,
           r.rsi == 0xf0f0f0f0 && r.rdx == 0x60606060 ? "right" : "WRONG translation");
    close(vcpu); close(vm);
}

/* "range N": what a zap of N pages costs, in the VMM and in the guest's refaults. The program reads N pages from
 * 0x600000 on and makes a syscall, in a loop; at each syscall exit the VMM zaps all N (madvise) or not at all. */
static void range(int pages, int rounds)
{
    build(0, 0);
    /* mov rcx, N; mov rsi, 0x600000; l: mov rax,[rsi]; add rsi,4096; dec rcx; jnz l; mov eax,1; syscall; jmp 0 */
    uint8_t prog[] = {0x48, 0xc7, 0xc1, 0, 0, 0, 0, 0x48, 0xc7, 0xc6, 0x00, 0x00, 0x60, 0x00,
                      0x48, 0x8b, 0x06, 0x48, 0x81, 0xc6, 0x00, 0x10, 0x00, 0x00, 0x48, 0xff, 0xc9, 0x75, 0xf1,
                      0xb8, 0x01, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xdb};
    memcpy(prog + 3, &pages, 4);
    put(CODE, prog, sizeof prog);
    setup_vcpu();
    double t, tv = 0, tz = 0, tn = 0;
    if (run_once(&t) != 0) { printf("range: no syscall\n"); return; }
    for (int i = 0; i < rounds; i++) { run_once(&t); tn += t; }
    for (int i = 0; i < rounds; i++) {
        double t0 = now();
        if (madvise(mem + 0x600000, (size_t)pages * 4096, MADV_DONTNEED)) die("madvise");
        tv += now() - t0;
        if (run_once(&t) != 0) { printf("range: no syscall\n"); return; }
        tz += t;
    }
    printf("zap %4d pages: madvise %8.1f us; the next run (touches all %d) %9.1f us against %8.1f us unzapped: %.1f us per refault\n",
           pages, tv / rounds * 1e6, pages, tz / rounds * 1e6, tn / rounds * 1e6, (tz - tn) / rounds / pages * 1e6);
    close(vcpu); close(vm);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "range")) {
        int fd = memfd_create("probe", 0);
        if (fd < 0 || ftruncate(fd, MEM)) die("memfd");
        mem = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        int sizes[] = {1, 16, 128, 512};
        for (int i = 0; i < 4; i++) range(sizes[i], argc > 2 ? atoi(argv[2]) : 20);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "relink")) {
        int fd = memfd_create("probe", 0);
        if (fd < 0 || ftruncate(fd, MEM)) die("memfd");
        mem = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        relink(0);
        relink(1);
        return 0;
    }
    int n = argc > 1 ? atoi(argv[1]) : 50;
    int write_mode = argc > 2 && !strcmp(argv[2], "write");
    int only = argc > 3 ? atoi(argv[3]) : -1;
    int fd = memfd_create("probe", 0);
    if (fd < 0 || ftruncate(fd, MEM)) die("memfd");
    mem = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mem == MAP_FAILED) die("mmap");
    printf("host: %s; mode %s; %d iterations per method\n", access("/sys/module/kvm_pvm", F_OK) == 0 ? "kvm_pvm" : "stock KVM",
           write_mode ? "write (PTE made read-only)" : "read (PTE made not present)", n);
    for (int m = 0; m < M_COUNT; m++) {
        if (only >= 0 && m != only) continue;
        build(write_mode, m == M_G_WRITE_PTE);
        setup_vcpu();
        double t;
        if (run_once(&t) != 0) { printf("%-40s first run did not reach the syscall\n", names[m]); continue; }
        int worked = 0, stale = 0, broken = 0;
        double tv = 0, tr = 0, tbase = 0;
        int nbase = 0;
        uint64_t good = T | 0x67, bad = write_mode ? (T | 0x65) : 0;
        for (int i = 0; i < n && !broken; i++) {
            /* a warm-up round: the access happened, the translation is cached */
            double t0 = now();
            if (m == M_G_WRITE_PTE) {
                set_rip(S_WRITE_PTE, bad);
            } else {
                *q(PTE_T) = bad;
                switch (m) {
                case M_SREGS: {
                    struct kvm_sregs s; ioctl(vcpu, KVM_GET_SREGS, &s);
                    s.cr3 = s.cr3 == PML4 ? PML4ALT : PML4; s.cr4 ^= 1 << 7;
                    if (ioctl(vcpu, KVM_SET_SREGS, &s)) die("SET_SREGS");
                    break;
                }
                case M_SLOT: {
                    struct kvm_userspace_memory_region d = region; d.memory_size = 0;
                    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &d)) die("delete slot");
                    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region)) die("re-add slot");
                    break;
                }
                case M_DONTNEED_T: if (madvise(mem + T, 4096, MADV_DONTNEED)) die("madvise"); break;
                case M_DONTNEED_PT: if (madvise(mem + PT2, 4096, MADV_DONTNEED)) die("madvise"); break;
                case M_MPROTECT_T:
                    if (mprotect(mem + T, 4096, PROT_READ) || mprotect(mem + T, 4096, PROT_READ | PROT_WRITE)) die("mprotect");
                    break;
                case M_LOGFLAG: {
                    struct kvm_userspace_memory_region d = region; d.flags = KVM_MEM_LOG_DIRTY_PAGES;
                    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &d)) die("log on");
                    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region)) die("log off");
                    break;
                }
                case M_G_INVLPG: set_rip(S_INVLPG, 0); break;
                case M_G_CR3: set_rip(S_CR3, 0); break;
                case M_G_CR4: set_rip(S_CR4, 0); break;
                case M_G_HC: set_rip(S_HC, 0); break;
                case M_G_HC_CUR: set_rip(S_HC_CUR, 0); break;
                case M_G_HC_INVLPG: set_rip(S_HC_INVLPG, 0); break;
                default: break;
                }
            }
            tv += now() - t0;
            int r = run_once(&t);
            tr += t;
            if (r == 2) { printf("%-40s faulted in the flush itself\n", names[m]); broken = 1; break; }
            if (r == 1) {
                worked++;
                /* restore, retry the access, and come back to the next syscall */
                if (m == M_G_WRITE_PTE) *q(PTE_T) = good; /* adding a right: a VMM write is enough... */
                else *q(PTE_T) = good;
                double tb;
                int again = run_once(&tb);
                if (again != 0) {
                    /* kvm may keep the not-present state cached: report it */
                    printf("%-40s the restored PTE was not taken up (exit %d)\n", names[m], again);
                    broken = 1;
                }
                tbase += tb; nbase++;
            } else {
                stale++;
                /* the syscall came: the program got through with the old translation */
                struct kvm_regs rr; ioctl(vcpu, KVM_GET_REGS, &rr);
                if (rr.rax == HC_TLB_FLUSH || rr.rax == HC_TLB_FLUSH_CURRENT || rr.rax == HC_TLB_INVLPG) {
                    printf("%-40s the hypercall arrived as the guest's own syscall (rip 0x%llx): not a hypercall here\n", names[m], (unsigned long long)rr.rip);
                    broken = 1;
                }
                *q(PTE_T) = good;
                if (m == M_G_WRITE_PTE) set_rip(S_WRITE_PTE, good);
            }
        }
        int tot = worked + stale;
        printf("%-40s worked %3d/%-3d stale %3d  VMM %8.1f us  next run %8.1f us  (restore run %8.1f us)\n", names[m], worked, tot, stale,
               tot ? tv / tot * 1e6 : 0, tot ? tr / tot * 1e6 : 0, nbase ? tbase / nbase * 1e6 : 0);
        fflush(stdout);
        close(vcpu); close(vm);
    }
    return 0;
}
