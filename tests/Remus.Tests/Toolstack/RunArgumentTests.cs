using Remus.Cli.Commands;
using Xunit;

namespace Remus.Tests.Toolstack;

/// <summary>Everything after `remus run`'s program belongs to the program, options included.</summary>
public sealed class RunArgumentTests
{
    [Theory]
    [InlineData("run prog", "run -- prog")]
    [InlineData("run prog --memory 5 -h", "run -- prog --memory 5 -h")]
    [InlineData("run --memory 64 -e A=1 --env B=2 -f /x --file /y prog a --foo", "run --memory 64 -e A=1 --env B=2 -f /x --file /y -- prog a --foo")]
    [InlineData("run --memory=64 prog", "run --memory=64 -- prog")]
    [InlineData("run -- prog -x", "run -- prog -x")]
    [InlineData("run --help", "run --help")]
    [InlineData("run --bogus prog", "run --bogus -- prog")]
    [InlineData("run", "run")]
    [InlineData("list --json", "list --json")]
    [InlineData("create -F prog", "create -F prog")]
    public void A_separator_goes_before_the_program(string args, string expected) =>
        Assert.Equal(expected.Split(' '), RunCommand.SeparateProgramArguments(args.Split(' ')));
}
