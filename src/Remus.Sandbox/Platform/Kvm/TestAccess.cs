using System.Runtime.CompilerServices;

// The KVM platform's layout, descriptors, stubs and vCPU are internal; their tests (tests/Remus.Tests/Sandbox/Kvm)
// check them directly.
[assembly: InternalsVisibleTo("Remus.Tests")]
