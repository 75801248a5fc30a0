using System.Runtime.CompilerServices;

namespace Remus.Kvm;

/// <summary>
/// The KVM ioctl request numbers Remus uses, named as in <c>&lt;linux/kvm.h&gt;</c> and encoded the way the C
/// macros encode them (<c>_IO/_IOR/_IOW/_IOWR(KVMIO, nr, type)</c>: direction in bits 30-31, argument size in bits
/// 16-29, type 0xAE in bits 8-15, number in bits 0-7), so every struct size feeds the number as in C.
/// A test compiles a C program against the real headers and compares each field of this class.
/// </summary>
public static class KvmIoctls
{
    public const uint KVMIO = 0xAE;

    private const uint IocNone = 0;
    private const uint IocWrite = 1;
    private const uint IocRead = 2;

    private static ulong Ioc(uint dir, uint nr, int size) =>
        ((ulong)dir << 30) | ((ulong)(uint)size << 16) | (KVMIO << 8) | nr;

    private static ulong Io(uint nr) => Ioc(IocNone, nr, 0);
    private static ulong Ior<T>(uint nr) => Ioc(IocRead, nr, Unsafe.SizeOf<T>());
    private static ulong Iow<T>(uint nr) => Ioc(IocWrite, nr, Unsafe.SizeOf<T>());
    private static ulong Iowr<T>(uint nr) => Ioc(IocRead | IocWrite, nr, Unsafe.SizeOf<T>());

    // /dev/kvm (system) ioctls
    public static readonly ulong KVM_GET_API_VERSION = Io(0x00);
    public static readonly ulong KVM_CREATE_VM = Io(0x01);
    public static readonly ulong KVM_GET_MSR_INDEX_LIST = Iowr<KvmMsrList>(0x02);
    public static readonly ulong KVM_CHECK_EXTENSION = Io(0x03);
    public static readonly ulong KVM_GET_VCPU_MMAP_SIZE = Io(0x04);
    public static readonly ulong KVM_GET_SUPPORTED_CPUID = Iowr<KvmCpuid2>(0x05);

    // VM ioctls
    public static readonly ulong KVM_CREATE_VCPU = Io(0x41);
    public static readonly ulong KVM_GET_DIRTY_LOG = Iow<KvmDirtyLog>(0x42);
    public static readonly ulong KVM_SET_USER_MEMORY_REGION = Iow<KvmUserspaceMemoryRegion>(0x46);
    public static readonly ulong KVM_SET_TSS_ADDR = Io(0x47);
    public static readonly ulong KVM_SET_IDENTITY_MAP_ADDR = Iow<ulong>(0x48);
    public static readonly ulong KVM_CREATE_IRQCHIP = Io(0x60);
    public static readonly ulong KVM_ENABLE_CAP = Iow<KvmEnableCap>(0xa3);
    public static readonly ulong KVM_CLEAR_DIRTY_LOG = Iowr<KvmClearDirtyLog>(0xc0);

    // vCPU ioctls
    public static readonly ulong KVM_RUN = Io(0x80);
    public static readonly ulong KVM_GET_REGS = Ior<KvmRegs>(0x81);
    public static readonly ulong KVM_SET_REGS = Iow<KvmRegs>(0x82);
    public static readonly ulong KVM_GET_SREGS = Ior<KvmSregs>(0x83);
    public static readonly ulong KVM_SET_SREGS = Iow<KvmSregs>(0x84);
    public static readonly ulong KVM_GET_MSRS = Iowr<KvmMsrs>(0x88);
    public static readonly ulong KVM_SET_MSRS = Iow<KvmMsrs>(0x89);
    public static readonly ulong KVM_SET_SIGNAL_MASK = Iow<KvmSignalMask>(0x8b);
    public static readonly ulong KVM_GET_FPU = Ior<KvmFpu>(0x8c);
    public static readonly ulong KVM_SET_FPU = Iow<KvmFpu>(0x8d);
    public static readonly ulong KVM_GET_LAPIC = Ior<KvmLapicState>(0x8e);
    public static readonly ulong KVM_SET_LAPIC = Iow<KvmLapicState>(0x8f);
    public static readonly ulong KVM_SET_CPUID2 = Iow<KvmCpuid2>(0x90);
    public static readonly ulong KVM_GET_CPUID2 = Iowr<KvmCpuid2>(0x91);
    public static readonly ulong KVM_GET_MP_STATE = Ior<KvmMpState>(0x98);
    public static readonly ulong KVM_SET_MP_STATE = Iow<KvmMpState>(0x99);
    public static readonly ulong KVM_GET_VCPU_EVENTS = Ior<KvmVcpuEvents>(0x9f);
    public static readonly ulong KVM_SET_VCPU_EVENTS = Iow<KvmVcpuEvents>(0xa0);
    public static readonly ulong KVM_GET_DEBUGREGS = Ior<KvmDebugRegs>(0xa1);
    public static readonly ulong KVM_SET_DEBUGREGS = Iow<KvmDebugRegs>(0xa2);
    public static readonly ulong KVM_GET_XSAVE = Ior<KvmXsave>(0xa4);
    public static readonly ulong KVM_SET_XSAVE = Iow<KvmXsave>(0xa5);
    public static readonly ulong KVM_GET_XCRS = Ior<KvmXcrs>(0xa6);
    public static readonly ulong KVM_SET_XCRS = Iow<KvmXcrs>(0xa7);
    public static readonly ulong KVM_GET_XSAVE2 = Ior<KvmXsave>(0xcf);
    public static readonly ulong KVM_SET_DEVICE_ATTR = Iow<KvmDeviceAttr>(0xe1);

    /// <summary>The name of a request number, for error messages ("KVM_SET_SREGS").</summary>
    public static string NameOf(ulong request)
    {
        foreach (var f in typeof(KvmIoctls).GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static))
        {
            if (f.FieldType == typeof(ulong) && f.Name.StartsWith("KVM_", StringComparison.Ordinal) && (ulong)f.GetValue(null)! == request)
                return f.Name;
        }
        return $"ioctl 0x{request:x}";
    }
}
