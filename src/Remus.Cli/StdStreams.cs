using System.Text;
using Remus.Toolstack.Console;

namespace Remus.Cli;

/// <summary>
/// Our stdout and stderr, written with write(2) and never buffered. System.Console is avoided on purpose: on a
/// terminal it initializes the terminal (keypad mode escapes, signal handlers), which `remus run` and
/// `remus console` must not do around the program's output.
/// </summary>
internal static class StdStreams
{
    public static TextWriter Out { get; } = Open(1);

    public static TextWriter Error { get; } = Open(2);

    private static TextWriter Open(int fd) =>
        new StreamWriter(new FdWriteStream(fd), new UTF8Encoding(encoderShouldEmitUTF8Identifier: false)) { AutoFlush = true, NewLine = "\n" };
}
