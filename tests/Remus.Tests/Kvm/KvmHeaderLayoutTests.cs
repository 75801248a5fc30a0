using System.Diagnostics;
using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using System.Text;
using Remus.Kvm;
using Remus.Kvm.Native;
using Xunit;

namespace Remus.Tests.Kvm;

/// <summary>
/// Compiles a C program against the real &lt;linux/kvm.h&gt; that prints sizeof/offsetof of every KVM struct Remus.Kvm
/// binds (every field, recursively, with its size) and the value of every ioctl number and constant it uses, and
/// compares each with the C# side (the runtime's real field offsets and Unsafe.SizeOf).
/// </summary>
public sealed class KvmHeaderLayoutTests
{
    private sealed record Check(string What, string CExpr, ulong Expected, string? Macro = null);

    /// <summary>C# struct → C type. Every field is checked unless <c>fields</c> is false.</summary>
    private static readonly (Type Type, string CType, bool Fields)[] Structs =
    [
        (typeof(KvmRegs), "struct kvm_regs", true),
        (typeof(KvmSegment), "struct kvm_segment", true),
        (typeof(KvmDtable), "struct kvm_dtable", true),
        (typeof(KvmSregs), "struct kvm_sregs", true),
        (typeof(KvmFpu), "struct kvm_fpu", true),
        (typeof(KvmXsave), "struct kvm_xsave", true),
        (typeof(KvmXcr), "struct kvm_xcr", true),
        (typeof(KvmXcrs), "struct kvm_xcrs", true),
        (typeof(KvmMsrEntry), "struct kvm_msr_entry", true),
        (typeof(KvmMsrs), "struct kvm_msrs", true),
        (typeof(KvmMsrList), "struct kvm_msr_list", true),
        (typeof(KvmCpuidEntry2), "struct kvm_cpuid_entry2", true),
        (typeof(KvmCpuid2), "struct kvm_cpuid2", true),
        (typeof(KvmVcpuEvents), "struct kvm_vcpu_events", true),
        (typeof(KvmMpState), "struct kvm_mp_state", true),
        (typeof(KvmDebugRegs), "struct kvm_debugregs", true),
        (typeof(KvmLapicState), "struct kvm_lapic_state", true),
        (typeof(KvmRun), "struct kvm_run", true),
        (typeof(KvmUserspaceMemoryRegion), "struct kvm_userspace_memory_region", true),
        (typeof(KvmDirtyLog), "struct kvm_dirty_log", true),
        (typeof(KvmClearDirtyLog), "struct kvm_clear_dirty_log", true),
        (typeof(KvmSignalMask), "struct kvm_signal_mask", true),
        (typeof(KvmEnableCap), "struct kvm_enable_cap", true),
        (typeof(SigSet), "sigset_t", false),
        (typeof(Timespec), "struct timespec", false),
    ];

    /// <summary>C# fields whose C counterpart is an anonymous union: its members are named directly.</summary>
    private static readonly HashSet<(Type, string)> Anonymous = [(typeof(KvmRun), nameof(KvmRun.Exit))];

    [GccFact]
    public void Structs_ioctl_numbers_and_constants_match_the_kernel_headers()
    {
        var checks = BuildChecks();
        var values = RunCProgram(checks);

        var failures = new List<string>();
        for (int i = 0; i < checks.Count; i++)
        {
            string actual = values[i];
            if (actual == "MISSING") failures.Add($"{checks[i].What}: {checks[i].Macro} is not defined by the headers");
            else if (ulong.Parse(actual) != checks[i].Expected)
                failures.Add($"{checks[i].What}: C says {actual}, C# says {checks[i].Expected}");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {checks.Count} checks differ:\n" + string.Join("\n", failures));
        // Guard against the check list silently shrinking.
        Assert.True(checks.Count > 300, $"only {checks.Count} checks were generated");
    }

    [Fact]
    public void Well_known_ioctl_numbers()
    {
        // Values as printed by a C program on x86-64 (independent of gcc being installed).
        Assert.Equal(0xAE00UL, KvmIoctls.KVM_GET_API_VERSION);
        Assert.Equal(0xAE80UL, KvmIoctls.KVM_RUN);
        Assert.Equal(0x8090AE81UL, KvmIoctls.KVM_GET_REGS);
        Assert.Equal(0x4090AE82UL, KvmIoctls.KVM_SET_REGS);
        Assert.Equal(0x8138AE83UL, KvmIoctls.KVM_GET_SREGS);
        Assert.Equal(0x4020AE46UL, KvmIoctls.KVM_SET_USER_MEMORY_REGION);
        Assert.Equal(0x4010AE42UL, KvmIoctls.KVM_GET_DIRTY_LOG);
        Assert.Equal(0xC008AE88UL, KvmIoctls.KVM_GET_MSRS);
        Assert.Equal(0x9000AEA4UL, KvmIoctls.KVM_GET_XSAVE);
        Assert.Equal(0x4004AE8BUL, KvmIoctls.KVM_SET_SIGNAL_MASK);
        Assert.Equal(2352, Unsafe.SizeOf<KvmRun>());
    }

    private static List<Check> BuildChecks()
    {
        var checks = new List<Check>();
        foreach (var (type, cType, fields) in Structs)
        {
            checks.Add(new Check($"sizeof({cType})", $"sizeof({cType})", (ulong)SizeOf(type)));
            if (fields) AddFields(checks, type, cType, "", 0);
        }

        foreach (var f in typeof(KvmIoctls).GetFields(BindingFlags.Public | BindingFlags.Static))
            if (f.Name.StartsWith("KVM", StringComparison.Ordinal))
                checks.Add(Macro(f.Name, Convert.ToUInt64(f.GetValue(null))));
        foreach (var f in typeof(KvmConstants).GetFields(BindingFlags.Public | BindingFlags.Static))
            checks.Add(Macro(f.Name, Convert.ToUInt64(f.GetValue(null))));
        foreach (KvmExitReason r in Enum.GetValues<KvmExitReason>())
            checks.Add(Macro("KVM_EXIT_" + Snake(r.ToString()).ToUpperInvariant(), (ulong)r));
        foreach (var f in typeof(Libc).GetFields(BindingFlags.Public | BindingFlags.Static))
            if (f.IsLiteral)
                checks.Add(Macro(f.Name, Convert.ToUInt64(f.GetValue(null))));
        checks.Add(new Check("VcpuKicker.DefaultSignal", "SIGRTMIN + 6", (ulong)VcpuKicker.DefaultSignal));
        return checks;
    }

    private static Check Macro(string name, ulong value) => new(name, name, value, name);

    /// <summary>Adds offsetof and member-size checks for every field of <paramref name="type"/>, which lies at
    /// <paramref name="baseOffset"/> inside <paramref name="cType"/> under the member path <paramref name="prefix"/>.</summary>
    private static void AddFields(List<Check> checks, Type type, string cType, string prefix, long baseOffset)
    {
        foreach (var f in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
        {
            long offset = baseOffset + OffsetOf(type, f);
            if (Anonymous.Contains((type, f.Name)))
            {
                AddFields(checks, f.FieldType, cType, prefix, offset);
                continue;
            }
            string path = prefix + Snake(f.Name);
            checks.Add(new Check($"offsetof({cType}, {path})", $"offsetof({cType}, {path})", (ulong)offset));
            checks.Add(new Check($"sizeof({cType}.{path})", $"sizeof(((({cType} *)0)->{path}))", (ulong)SizeOf(f.FieldType)));
            if (IsPlainStruct(f))
                AddFields(checks, f.FieldType, cType, path + ".", offset);
        }
    }

    private static bool IsPlainStruct(FieldInfo f) =>
        f.FieldType.IsValueType && !f.FieldType.IsPrimitive && !f.FieldType.IsEnum
        && f.GetCustomAttribute<FixedBufferAttribute>() is null
        && f.FieldType.GetCustomAttribute<InlineArrayAttribute>() is null;

    /// <summary>"GuestPhysAddr" → "guest_phys_addr", "Cr0" → "cr0", "X86Rdmsr" → "x86_rdmsr".</summary>
    private static string Snake(string name)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (char.IsUpper(c) && i > 0 && (char.IsLower(name[i - 1]) || char.IsDigit(name[i - 1]))) sb.Append('_');
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }

    private static int SizeOf(Type t) =>
        (int)typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(t).Invoke(null, null)!;

    /// <summary>The runtime's real offset of <paramref name="field"/> (what the kernel sees through a pointer), taken
    /// with ldflda rather than Marshal.OffsetOf, which describes the marshalled layout.</summary>
    private static long OffsetOf(Type type, FieldInfo field)
    {
        var dm = new DynamicMethod("offset_" + field.Name, typeof(long), [type.MakeByRefType()], typeof(KvmHeaderLayoutTests).Module, skipVisibility: true);
        var il = dm.GetILGenerator();
        il.Emit(OpCodes.Ldarg_0);
        il.Emit(OpCodes.Ldflda, field);
        il.Emit(OpCodes.Ldarg_0);
        il.Emit(OpCodes.Sub);
        il.Emit(OpCodes.Conv_I8);
        il.Emit(OpCodes.Ret);
        object instance = Activator.CreateInstance(type)!;
        return (long)dm.Invoke(null, [instance])!;
    }

    private static string[] RunCProgram(List<Check> checks)
    {
        var c = new StringBuilder();
        c.AppendLine("#define _GNU_SOURCE");
        c.AppendLine("#include <errno.h>");
        c.AppendLine("#include <fcntl.h>");
        c.AppendLine("#include <signal.h>");
        c.AppendLine("#include <stddef.h>");
        c.AppendLine("#include <stdio.h>");
        c.AppendLine("#include <time.h>");
        c.AppendLine("#include <sys/mman.h>");
        c.AppendLine("#include <linux/kvm.h>");
        c.AppendLine("int main(void) {");
        for (int i = 0; i < checks.Count; i++)
        {
            var k = checks[i];
            if (k.Macro is not null) c.AppendLine($"#ifdef {k.Macro}");
            c.AppendLine($"    printf(\"{i} %llu\\n\", (unsigned long long)({k.CExpr}));");
            if (k.Macro is not null)
            {
                c.AppendLine("#else");
                c.AppendLine($"    printf(\"{i} MISSING\\n\");");
                c.AppendLine("#endif");
            }
        }
        c.AppendLine("    return 0;");
        c.AppendLine("}");

        string dir = Directory.CreateTempSubdirectory("remus-kvm-layout-").FullName;
        try
        {
            string source = Path.Combine(dir, "layout.c");
            string exe = Path.Combine(dir, "layout");
            File.WriteAllText(source, c.ToString());
            var (rc, _, err) = Run(Gcc.Path!, "-std=gnu11", "-O0", "-Wall", "-o", exe, source);
            Assert.True(rc == 0, $"gcc failed on the generated layout probe ({source}):\n{err}");
            var (rc2, output, err2) = Run(exe);
            Assert.True(rc2 == 0, $"the layout probe failed: {err2}");
            var values = new string[checks.Count];
            foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                string[] parts = line.Split(' ');
                values[int.Parse(parts[0])] = parts[1];
            }
            int missing = Array.IndexOf(values, null);
            Assert.True(missing < 0, $"the layout probe printed no value for check {missing}");
            return values;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static (int ExitCode, string Stdout, string Stderr) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout, stderr.Result);
    }
}
