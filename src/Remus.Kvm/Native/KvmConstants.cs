namespace Remus.Kvm;

/// <summary>
/// Constants of <c>&lt;linux/kvm.h&gt;</c> and <c>&lt;asm/kvm.h&gt;</c>, named as in C. Checked against the real headers
/// by a test. Exit reasons are the <see cref="KvmExitReason"/> enum.
/// </summary>
public static class KvmConstants
{
    /// <summary>KVM_GET_API_VERSION must return this (it has not changed since Linux 2.6.22).</summary>
    public const int KVM_API_VERSION = 12;

    // Capabilities (KVM_CHECK_EXTENSION)
    public const int KVM_CAP_IRQCHIP = 0;
    public const int KVM_CAP_USER_MEMORY = 3;
    public const int KVM_CAP_SET_TSS_ADDR = 4;
    public const int KVM_CAP_EXT_CPUID = 7;
    public const int KVM_CAP_NR_VCPUS = 9;
    public const int KVM_CAP_NR_MEMSLOTS = 10;
    public const int KVM_CAP_MP_STATE = 14;
    public const int KVM_CAP_SYNC_MMU = 16;
    public const int KVM_CAP_SET_IDENTITY_MAP_ADDR = 37;
    public const int KVM_CAP_VCPU_EVENTS = 41;
    public const int KVM_CAP_DEBUGREGS = 50;
    public const int KVM_CAP_XSAVE = 55;
    public const int KVM_CAP_XCRS = 56;
    public const int KVM_CAP_MAX_VCPUS = 66;
    public const int KVM_CAP_IMMEDIATE_EXIT = 136;
    public const int KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 = 168;
    public const int KVM_CAP_DIRTY_LOG_RING = 192;
    public const int KVM_CAP_XSAVE2 = 208;

    // Memory slot flags (kvm_userspace_memory_region.flags)
    public const uint KVM_MEM_LOG_DIRTY_PAGES = 1u << 0;
    public const uint KVM_MEM_READONLY = 1u << 1;

    // KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 arguments
    public const ulong KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE = 1UL << 0;
    public const ulong KVM_DIRTY_LOG_INITIALLY_SET = 1UL << 1;

    // kvm_run.io.direction
    public const byte KVM_EXIT_IO_IN = 0;
    public const byte KVM_EXIT_IO_OUT = 1;

    // kvm_run.internal.suberror
    public const uint KVM_INTERNAL_ERROR_EMULATION = 1;
    public const uint KVM_INTERNAL_ERROR_SIMUL_EX = 2;
    public const uint KVM_INTERNAL_ERROR_DELIVERY_EV = 3;
    public const uint KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON = 4;

    // kvm_run.system_event.type
    public const uint KVM_SYSTEM_EVENT_SHUTDOWN = 1;
    public const uint KVM_SYSTEM_EVENT_RESET = 2;
    public const uint KVM_SYSTEM_EVENT_CRASH = 3;

    // kvm_mp_state.mp_state
    public const uint KVM_MP_STATE_RUNNABLE = 0;
    public const uint KVM_MP_STATE_UNINITIALIZED = 1;
    public const uint KVM_MP_STATE_INIT_RECEIVED = 2;
    public const uint KVM_MP_STATE_HALTED = 3;
    public const uint KVM_MP_STATE_SIPI_RECEIVED = 4;

    // kvm_vcpu_events.flags
    public const uint KVM_VCPUEVENT_VALID_NMI_PENDING = 0x1;
    public const uint KVM_VCPUEVENT_VALID_SIPI_VECTOR = 0x2;
    public const uint KVM_VCPUEVENT_VALID_SHADOW = 0x4;
    public const uint KVM_VCPUEVENT_VALID_SMM = 0x8;
    public const uint KVM_VCPUEVENT_VALID_PAYLOAD = 0x10;
    public const uint KVM_VCPUEVENT_VALID_TRIPLE_FAULT = 0x20;

    // kvm_cpuid_entry2.flags
    public const uint KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1u << 0;

    // Sizes
    public const int KVM_MAX_XCRS = 16;
    public const int KVM_APIC_REG_SIZE = 0x400;
    public const int KVM_NR_INTERRUPTS = 256;
}
