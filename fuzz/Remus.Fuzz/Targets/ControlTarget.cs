using System.Text.Json;
using Remus.Toolstack;
using Remus.Toolstack.Config;
using Remus.Toolstack.Control;

namespace Remus.Fuzz.Targets;

/// <summary>
/// The control socket's request line (any local client may send one): <see cref="ControlProtocol.ParseRequest"/>,
/// then what the VMM judges of the request before it acts (a new name, the target's receiver command, witness
/// URLs) and the reply it serializes, which echoes the client's strings. Nothing may escape: the VMM answers
/// every line with a response.
/// </summary>
public static class ControlTarget
{
    public static FuzzTarget Target { get; } = new("control",
        "ControlProtocol.ParseRequest + the request's names/target/witness + the reply's JSON",
        Feed, []);

    private static void Feed(byte[] input)
    {
        var request = ControlProtocol.ParseRequest(input, out var failure);
        if (request is null)
        {
            Reply(failure ?? throw new FuzzInvariantException("ParseRequest returned neither a request nor a failure"));
            return;
        }
        Reply(ControlResponse.Failure($"unknown request '{request.Op}'"));
        if (request.Name is { } name && DomainName.Problem(name) is { } problem) Reply(ControlResponse.Failure(problem));
        if (request.Target is { } target)
        {
            _ = target.Describe();
            if (target.Tcp is null) _ = target.ReceiverCommand;
        }
        if (request.Witness is { Length: > 0 } urls)
        {
            try { _ = new Remus.Toolstack.Witness.EtcdWitness(urls); }
            catch (ArgumentException e) { Reply(ControlResponse.Failure(e.Message)); } // as VmmHost.Protect answers
        }
    }

    private static void Reply(ControlResponse response) =>
        _ = JsonSerializer.SerializeToUtf8Bytes(response, ToolstackJson.Default.ControlResponse);
}
