using Remus.Tests.Support;

namespace Remus.Tests.Toolstack;

/// <summary>The tiny static C programs the toolstack tests run in domains, compiled at test time (gcc -static).</summary>
internal static class ToolstackGuests
{
    /// <summary>Prints "tick N" every <c>argv[1]</c> ms (default 50), forever.</summary>
    public const string Ticker = """
        #include <stdio.h>
        #include <stdlib.h>
        #include <unistd.h>
        int main(int argc, char **argv) {
            int ms = argc > 1 ? atoi(argv[1]) : 50;
            for (int i = 0;; i++) { printf("tick %d\n", i); fflush(stdout); usleep(ms * 1000); }
        }
        """;

    /// <summary>Says "ready", then answers each line with "got: LINE"; "quit" ends it with status 7, end of input with 3.</summary>
    public const string Echoer = """
        #include <stdio.h>
        #include <string.h>
        int main(void) {
            char line[512];
            printf("ready\n"); fflush(stdout);
            while (fgets(line, sizeof line, stdin)) {
                if (strncmp(line, "quit", 4) == 0) { printf("bye\n"); return 7; }
                printf("got: %s", line); fflush(stdout);
            }
            return 3;
        }
        """;

    /// <summary>Writes "out N" to stdout and "err N" to stderr alternately (N = 1..argv[2], default 6), then exits argv[1].</summary>
    public const string Streams = """
        #include <stdio.h>
        #include <stdlib.h>
        int main(int argc, char **argv) {
            int status = argc > 1 ? atoi(argv[1]) : 0, lines = argc > 2 ? atoi(argv[2]) : 6;
            for (int i = 1; i <= lines; i++) {
                if (i % 2) { printf("out %d\n", i); fflush(stdout); }
                else { fprintf(stderr, "err %d\n", i); }
            }
            return status;
        }
        """;

    /// <summary>Writes <paramref name="source"/> to a stable temp path and compiles it (cached by content).</summary>
    public static string Build(string name, string source)
    {
        var dir = Path.Combine(Path.GetTempPath(), "remus-toolstack-guests");
        Directory.CreateDirectory(dir);
        var sourcePath = Path.Combine(dir, $"{name}-{Environment.ProcessId}.c");
        File.WriteAllText(sourcePath, source);
        return GuestBuilder.Compile(sourcePath, "gcc", ["-static", "-O2"], "toolstack", out var log)
               ?? throw new InvalidOperationException($"compiling {name} failed:\n{log}");
    }
}
