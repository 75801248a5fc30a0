using System.IO.Pipes;
using System.Net;
using System.Net.Sockets;
using Remus.Checkpoint.Stream;
using Xunit;

namespace Remus.Tests.Checkpoint.Stream;

public class TransportTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(4099)]
    public void Partial_reads_of_any_size_reproduce_every_epoch(int maxChunk)
    {
        var recorded = StreamScenario.Record(CheckpointWriterOptions.Default, pages: maxChunk == 1 ? 40 : 200, epochs: 5, seed: 40 + maxChunk);
        var trickle = new TrickleStream(new MemoryStream(recorded.Bytes, writable: false), maxChunk, seed: maxChunk);
        StreamScenario.Replay(recorded, trickle);
        Assert.True(trickle.Reads > recorded.Bytes.Length / maxChunk / 2);
    }

    [Fact]
    public async Task An_anonymous_pipe_carries_a_stream_between_threads()
    {
        // Record once to know the expected memory per epoch, then send the same scenario through a pipe.
        var expected = StreamScenario.Record(CheckpointWriterOptions.Default, pages: 256, epochs: 6, seed: 50);
        using var server = new AnonymousPipeServerStream(PipeDirection.Out);
        using var client = new AnonymousPipeClientStream(PipeDirection.In, server.ClientSafePipeHandle);
        var sender = Task.Run(() =>
        {
            StreamScenario.Record(CheckpointWriterOptions.Default, pages: 256, epochs: 6, seed: 50, output: server);
            server.Dispose();
        });
        StreamScenario.Replay(expected, client);
        await sender.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task A_Remus_loop_over_loopback_TCP_acks_each_epoch_on_the_same_connection()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        const int pages = 512, epochs = 20;
        var f = new PageFactory(60);
        var primaryMemory = new MemoryImage(pages);
        for (int i = 0; i < pages; i++) f.Any(primaryMemory.Page(i));
        var snapshots = new List<byte[]>();

        var backup = Task.Run(async () =>
        {
            using var socket = await listener.AcceptTcpClientAsync();
            socket.ReceiveTimeout = socket.SendTimeout = 30_000;
            var net = socket.GetStream();
            var reader = new CheckpointReader(net);
            var acks = new AckWriter(net);
            reader.ReadHeader();
            var memory = new MemoryImage(pages);
            var applied = new List<byte[]>();
            while (reader.ReadEpoch() is { } epoch)
            {
                using (epoch) epoch.ApplyTo(memory);
                applied.Add(memory.Snapshot());
                acks.WriteAck(epoch);
            }
            acks.WriteEnd();
            return applied;
        });

        using (var client = new TcpClient())
        {
            await client.ConnectAsync(IPAddress.Loopback, port);
            client.ReceiveTimeout = client.SendTimeout = 30_000;
            var net = client.GetStream();
            var writer = new CheckpointWriter(net);
            var acks = new AckReader(net);
            writer.WriteHeader(new StreamHeader("{\"name\":\"remus\"}"u8.ToArray()));
            writer.WritePages(Enumerable.Range(0, pages).Select(i => (ulong)i).ToArray(), primaryMemory);
            for (ulong e = 1; e <= epochs; e++)
            {
                if (e > 1)
                    foreach (int pfn in Enumerable.Range(0, pages).Where(_ => f.Rng.Next(8) == 0))
                    {
                        f.Mutate(primaryMemory.Page(pfn));
                        writer.WritePage((ulong)pfn, primaryMemory.Page(pfn));
                    }
                writer.WriteVcpuState([(byte)e]);
                var sent = writer.EndCheckpoint(e);
                snapshots.Add(primaryMemory.Snapshot());
                writer.WriteHeartbeat();
                var ack = acks.ReadAck(); // output of epoch e may be released now
                Assert.NotNull(ack);
                Assert.True(ack.Value.Confirms(sent), $"ack {ack} does not confirm {sent}");
            }
            writer.WriteEnd();
            Assert.Null(acks.ReadAck());
            Assert.True(writer.Statistics.XorLz4Pages > 0);
        }

        var appliedByBackup = await backup.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(epochs, appliedByBackup.Count);
        for (int i = 0; i < epochs; i++)
            Assert.True(snapshots[i].AsSpan().SequenceEqual(appliedByBackup[i]), $"backup memory differs at epoch {i + 1}");
    }

    [Fact]
    public async Task The_backup_sees_a_dead_primary_as_truncation_and_keeps_the_last_complete_epoch()
    {
        var recorded = StreamScenario.Record(CheckpointWriterOptions.Default, pages: 128, epochs: 3, seed: 61);
        int cut = recorded.Bytes.Length - 8 - (int)recorded.Summaries[^1].Bytes / 2; // mid third epoch
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var primary = Task.Run(async () =>
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port);
            await client.GetStream().WriteAsync(recorded.Bytes.AsMemory(0, cut));
            client.Client.Shutdown(SocketShutdown.Send);
            client.Close(); // the primary dies
        });
        using var socket = await listener.AcceptTcpClientAsync();
        socket.ReceiveTimeout = 30_000;
        var reader = new CheckpointReader(socket.GetStream());
        reader.ReadHeader();
        var memory = new MemoryImage(128);
        int applied = 0;
        var e = Assert.Throws<CheckpointStreamException>(() =>
        {
            while (reader.ReadEpoch() is { } epoch)
            {
                using (epoch) epoch.ApplyTo(memory);
                applied++;
            }
        });
        await primary;
        Assert.Equal(CheckpointStreamError.Truncated, e.Error);
        Assert.Equal(2, applied);
        Assert.Equal(recorded.Snapshots[1], memory.Bytes);
        Assert.Equal(recorded.Summaries[1].Epoch, reader.LastEpoch);
    }
}
