using System.Runtime.CompilerServices;

// The layout test compares internal libc constants and structs with the C headers.
[assembly: InternalsVisibleTo("Remus.Tests")]
