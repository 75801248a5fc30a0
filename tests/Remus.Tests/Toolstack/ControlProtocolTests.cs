using System.Text.Json;
using Remus.Toolstack;
using Remus.Toolstack.Control;
using Xunit;

namespace Remus.Tests.Toolstack;

public sealed class ControlProtocolTests
{
    [Fact]
    public void Requests_are_one_small_versioned_json_line()
    {
        var json = JsonSerializer.Serialize(new ControlRequest { Op = ControlOps.Rename, Name = "db" }, ToolstackJson.Default.ControlRequest);
        Assert.Equal("""{"v":1,"op":"rename","name":"db","replay":false}""", json);
        Assert.DoesNotContain('\n', json);
    }

    [Fact]
    public void The_vmm_parses_a_request_line_or_answers_why_not()
    {
        var request = ControlProtocol.ParseRequest("""{"v":1,"op":"rename","name":"db"}"""u8, out var failure);
        Assert.Null(failure);
        Assert.Equal(ControlOps.Rename, request!.Op);
        Assert.Equal("db", request.Name);

        Assert.Null(ControlProtocol.ParseRequest("""{"v":1,"op":"""u8, out failure));
        Assert.False(failure!.Ok);
        Assert.StartsWith("malformed request: ", failure.Error);

        Assert.Null(ControlProtocol.ParseRequest("""{"v":2,"op":"info"}"""u8, out failure));
        Assert.Equal("this VMM speaks control protocol 1, the request is version 2", failure!.Error);

        Assert.Null(ControlProtocol.ParseRequest("null"u8, out failure));
        Assert.Equal("this VMM speaks control protocol 1, the request is version ", failure!.Error);
    }

    [Fact]
    public void Domain_info_json_has_the_documented_fields_and_lowercase_states()
    {
        var info = new DomainInfo { Name = "web", Id = 3, Pid = 1234, State = DomainRunState.Paused, Memory = 64, Time = 1.5 };
        var list = DomainInfo.ToJson([info]);
        using var doc = JsonDocument.Parse(list);
        var item = doc.RootElement.EnumerateArray().Single();
        Assert.Equal("web", item.GetProperty("name").GetString());
        Assert.Equal(3, item.GetProperty("id").GetInt32());
        Assert.Equal(1234, item.GetProperty("pid").GetInt32());
        Assert.Equal("paused", item.GetProperty("state").GetString());
        Assert.Equal(64, item.GetProperty("memory").GetInt32());
        Assert.Equal(1.5, item.GetProperty("time").GetDouble());
        Assert.False(item.TryGetProperty("exit_status", out _));
        Assert.Equal(info, DomainInfo.ListFromJson(list).Single());
    }

    [Theory]
    [InlineData(DomainRunState.Running, "running")]
    [InlineData(DomainRunState.Paused, "paused")]
    [InlineData(DomainRunState.Exited, "exited")]
    [InlineData(DomainRunState.Unknown, "unknown")]
    public void States(DomainRunState state, string json) =>
        Assert.Contains($"\"state\": \"{json}\"", DomainInfo.ToJson([new DomainInfo { Name = "a", Id = 1, Pid = 1, State = state, Memory = 1 }]));

    [Fact]
    public void Frame_header_is_kind_then_little_endian_length()
    {
        var header = new byte[ControlProtocol.FrameHeaderBytes];
        ControlProtocol.WriteFrameHeader(header, ConsoleFrameKind.Stderr, 0x01020304);
        Assert.Equal(new byte[] { 2, 4, 3, 2, 1 }, header);
    }
}
