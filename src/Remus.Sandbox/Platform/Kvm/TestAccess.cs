using System.Runtime.CompilerServices;

// The KVM platform's layout, descriptors, stubs and vCPU are internal; their tests (tests/Remus.Tests/Sandbox/Kvm)
// check them directly.
[assembly: InternalsVisibleTo("Remus.Tests")]
// remus-bench measures what making a KVM vCPU costs (bench/Remus.Bench/VcpuBench.cs).
[assembly: InternalsVisibleTo("remus-bench")]
// The fuzz harnesses (fuzz/Remus.Fuzz) feed the ELF loader and the volume-ops validator directly.
[assembly: InternalsVisibleTo("Remus.Fuzz")]
