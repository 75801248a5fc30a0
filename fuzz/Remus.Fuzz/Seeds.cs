using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using K4os.Compression.LZ4;
using Remus.Checkpoint.Stream;
using Remus.Sandbox.Volumes;
using Remus.Toolstack;
using Remus.Toolstack.Config;

namespace Remus.Fuzz;

/// <summary>
/// Writes the seed corpora (fuzz/corpus/TARGET/), each file small (&lt; 64 KiB): real checkpoint streams from the
/// CheckpointWriter (every record type), tiny static ELF programs whole and truncated, configs, request lines, LZ4
/// pages. Deterministic: the same files every time.
/// </summary>
internal static class Seeds
{
    public static void WriteAll(string root)
    {
        Checkpoint(Dir(root, "checkpoint"));
        Elf(Dir(root, "elf"));
        Configs(root);
        Control(Dir(root, "control"));
        PageCodec(Dir(root, "pagecodec"));
    }

    private static string Dir(string root, string name) => Directory.CreateDirectory(Path.Combine(root, name)).FullName;

    private static void Put(string dir, string name, byte[] bytes)
    {
        if (bytes.Length >= 64 << 10) throw new InvalidOperationException($"seed {name} is {bytes.Length} bytes (keep seeds < 64 KiB)");
        File.WriteAllBytes(Path.Combine(dir, name), bytes);
    }

    private static void Put(string dir, string name, string text) => Put(dir, name, Encoding.UTF8.GetBytes(text));

    private static byte[] Page(int seed, bool compressible)
    {
        var page = new byte[StreamFormat.PageSize];
        var random = new Random(seed);
        if (compressible)
            for (int i = 0; i < page.Length; i += 64) page[i] = (byte)random.Next();
        else random.NextBytes(page);
        return page;
    }

    // ---- checkpoint streams ----

    private static byte[] Stream(uint version, bool compress, Action<CheckpointWriter> body)
    {
        var output = new MemoryStream();
        var writer = new CheckpointWriter(output, new CheckpointWriterOptions { Compress = compress, PageCacheBytes = compress ? 1 << 20 : 0 });
        writer.WriteHeader(new StreamHeader("""{"name":"seed","program":"/bin/seed","memory":4}"""u8.ToArray()) { Version = version });
        body(writer);
        return output.ToArray();
    }

    private static byte[] VolumeOps()
    {
        var batch = new VolumeBatchWriter();
        batch.Mkdir(0, "d", 0x1ed);
        batch.Create(0, "d/f", 0x1a4);
        batch.Write(0, "d/f", 0, new byte[200]);
        batch.Write(1, "g", 4096, "hello"u8);
        batch.Truncate(0, "d/f", 100);
        batch.Rename(0, "d/f", "d/h", 0);
        batch.Symlink(1, "target", "s");
        batch.Chmod(0, "d", 0x1c0);
        batch.Unlink(0, "d/h");
        byte[]? body = null;
        batch.Drain(b => body = b.ToArray());
        return body!;
    }

    private static void Checkpoint(string dir)
    {
        foreach (uint version in new uint[] { 1, 2 })
            foreach (bool compress in new[] { false, true })
            {
                string tag = $"v{version}-{(compress ? "lz4" : "raw")}";
                // Epoch 1: pages of every kind, two vCPUs, kernel state, volume ops; epoch 2: XOR deltas, a heartbeat.
                Put(dir, $"{tag}-epochs", Stream(version, compress, w =>
                {
                    w.WritePage(0, Page(1, compressible: false));
                    w.WritePage(1, new byte[StreamFormat.PageSize]);
                    w.WritePage(2, Page(2, compressible: true));
                    w.WritePage(5, Page(3, compressible: true));
                    w.WriteVcpuState(0, Encoding.ASCII.GetBytes("vcpu0-registers"));
                    w.WriteVcpuState(1, Encoding.ASCII.GetBytes("vcpu1"));
                    w.WriteKernelState(Encoding.ASCII.GetBytes("kernel-state-blob"));
                    w.WriteVolumeOps(VolumeOps());
                    w.EndCheckpoint(1);
                    w.WriteHeartbeat(DateTimeOffset.UnixEpoch.AddSeconds(1));
                    var changed = Page(2, compressible: true);
                    changed[7] ^= 0xff;
                    w.WritePage(2, changed);
                    w.WritePage(5, Page(3, compressible: true));
                    w.WriteVcpuState(0, Encoding.ASCII.GetBytes("vcpu0-again"));
                    w.EndCheckpoint(2);
                    w.WriteEnd();
                }));
            }
        Put(dir, "v2-exit", Stream(2, true, w =>
        {
            w.WritePage(3, Page(4, compressible: true));
            w.EndCheckpoint(1);
            w.WriteVolumeOps(VolumeOps());
            w.WriteExit(3, "last words\n"u8);
            w.EndCheckpoint(2);
            w.WriteEnd();
        }));
        Put(dir, "v2-release", Stream(2, true, w =>
        {
            w.WritePage(4, Page(5, compressible: true));
            w.EndCheckpoint(7);
            w.WriteRelease("backup too slow");
        }));
        Put(dir, "v1-empty", Stream(1, false, w => w.WriteEnd()));
        // A stream cut in the middle of its first epoch (a primary that died).
        var whole = File.ReadAllBytes(Path.Combine(dir, "v2-lz4-epochs"));
        Put(dir, "v2-truncated", whole[..(whole.Length / 2)]);
    }

    // ---- ELF ----

    /// <summary>A tiny static x86-64 program: exit(0). One PT_LOAD (+ PT_PHDR), no sections (stripped).</summary>
    private static byte[] TinyElf(bool pie, bool phdr)
    {
        ulong baseAddress = pie ? 0UL : 0x400000UL;
        int phnum = phdr ? 2 : 1;
        int codeAt = 64 + 56 * phnum;
        byte[] code = [0xB8, 60, 0, 0, 0, 0x31, 0xFF, 0x0F, 0x05]; // mov eax,60; xor edi,edi; syscall
        var f = new byte[codeAt + code.Length];
        var s = f.AsSpan();
        s[0] = 0x7F; s[1] = (byte)'E'; s[2] = (byte)'L'; s[3] = (byte)'F';
        s[4] = 2; s[5] = 1; s[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(s[16..], (ushort)(pie ? 3 : 2));
        BinaryPrimitives.WriteUInt16LittleEndian(s[18..], 0x3E);
        BinaryPrimitives.WriteUInt32LittleEndian(s[20..], 1);
        BinaryPrimitives.WriteUInt64LittleEndian(s[24..], baseAddress + (ulong)codeAt);
        BinaryPrimitives.WriteUInt64LittleEndian(s[32..], 64);
        BinaryPrimitives.WriteUInt16LittleEndian(s[52..], 64);
        BinaryPrimitives.WriteUInt16LittleEndian(s[54..], 56);
        BinaryPrimitives.WriteUInt16LittleEndian(s[56..], (ushort)phnum);
        int ph = 64;
        if (phdr)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(s[ph..], 6);
            BinaryPrimitives.WriteUInt32LittleEndian(s[(ph + 4)..], 4);
            BinaryPrimitives.WriteUInt64LittleEndian(s[(ph + 8)..], 64);
            BinaryPrimitives.WriteUInt64LittleEndian(s[(ph + 16)..], baseAddress + 64);
            BinaryPrimitives.WriteUInt64LittleEndian(s[(ph + 32)..], (ulong)(56 * phnum));
            BinaryPrimitives.WriteUInt64LittleEndian(s[(ph + 40)..], (ulong)(56 * phnum));
            ph += 56;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(s[ph..], 1);
        BinaryPrimitives.WriteUInt32LittleEndian(s[(ph + 4)..], 5);
        BinaryPrimitives.WriteUInt64LittleEndian(s[(ph + 8)..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(s[(ph + 16)..], baseAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(s[(ph + 32)..], (ulong)f.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(s[(ph + 40)..], (ulong)f.Length + 0x2000); // .bss
        BinaryPrimitives.WriteUInt64LittleEndian(s[(ph + 48)..], 0x1000);
        code.CopyTo(s[codeAt..]);
        return f;
    }

    private static void Elf(string dir)
    {
        var exec = TinyElf(pie: false, phdr: true);
        Put(dir, "static-exec", exec);
        Put(dir, "static-exec-nophdr", TinyElf(pie: false, phdr: false));
        Put(dir, "static-pie", TinyElf(pie: true, phdr: true));
        Put(dir, "truncated-ehdr", exec[..40]);
        Put(dir, "truncated-phdr", exec[..100]);
    }

    // ---- configs ----

    private static void Configs(string root)
    {
        string toml = Dir(root, "domain-toml");
        Put(toml, "minimal.toml", "name = \"web\"\nprogram = \"bin/server\"\n");
        Put(toml, "full.toml", """
            name = "web"
            memory = 128
            program = "bin/server"
            args = ["--port", "8080"]
            files = ["data/", "etc/hosts"]
            console_log = "web.log"
            platform = "ptrace"
            tmpfs = false
            witness = ["http://10.0.0.5:2379"]
            [env]
            GREETING = "hello"
            [network]
            tap = "rmweb0"
            address = "10.99.0.2/24"
            gateway = "10.99.0.1"
            mac = "02:52:4d:00:00:02"
            [[volume]]
            source = "data/shop"
            target = "/data"
            [[volume]]
            source = "/srv/logs"
            target = "/var/log"
            """);
        Put(toml, "bridge.toml", "name = \"b\"\nprogram = \"/bin/p\"\n[network]\ntap = \"t0\"\naddress = \"10.0.0.2/8\"\nbridge = \"br0\"\nnetns = \"lab\"\n");

        string host = Dir(root, "host-toml");
        Put(host, "tls.toml", "[tls]\ncert = \"host.crt\"\nkey = \"host.key\"\nca = \"/etc/remus/ca.crt\"\n[receive]\nallow_paths = [\"/srv/remus\"]\nmax_memory = 8192\nmax_vcpus = 64\n");
        Put(host, "psk.toml", "[psk]\nfile = \"psk\"\n");
        Put(host, "receive.toml", "[receive]\nallow_paths = [\"/srv/a\", \"/var/log/remus\"]\n");

        string json = Dir(root, "config-json");
        var full = ConfigLoader.Parse(File.ReadAllText(Path.Combine(toml, "full.toml")), "full.toml", "/nonexistent-remus-fuzz");
        Put(json, "full.json", JsonSerializer.SerializeToUtf8Bytes(full, ToolstackJson.Default.DomainConfig));
        var minimal = ConfigLoader.Parse("name = \"m\"\nprogram = \"/nonexistent-remus-fuzz/p\"\n", "m.toml", "/");
        Put(json, "minimal.json", JsonSerializer.SerializeToUtf8Bytes(minimal, ToolstackJson.Default.DomainConfig));
    }

    // ---- control requests ----

    private static void Control(string dir)
    {
        Put(dir, "info", """{"v":1,"op":"info"}""");
        Put(dir, "rename", """{"v":1,"op":"rename","name":"new-name"}""");
        Put(dir, "console", """{"v":1,"op":"console","replay":true}""");
        Put(dir, "save", """{"v":1,"op":"save","path":"/tmp/x.save","keep_running":true,"compress":false}""");
        Put(dir, "migrate", """{"v":1,"op":"migrate","target":{"host":"b","ssh":"ssh -p 2222","remus":false,"volumes":"/srv/v","env":{"A":"1"},"cwd":"/"}}""");
        Put(dir, "protect-tcp", """{"v":1,"op":"protect","target":{"host":"b","tcp":"b:7000","security":null},"interval_ms":50,"timeout_ms":500,"witness":["http://10.0.0.5:2379"],"witness_ttl_ms":300}""");
        Put(dir, "protect-blackhole", """{"v":1,"op":"protect","blackhole":true}""");
        Put(dir, "version2", """{"v":2,"op":"info"}""");
    }

    // ---- page codec ----

    private static void PageCodec(string dir)
    {
        var target = new byte[LZ4Codec.MaximumOutputSize(StreamFormat.PageSize)];
        void Lz4(string name, byte[] page)
        {
            int n = LZ4Codec.Encode(page, target, LZ4Level.L00_FAST);
            Put(dir, name, target[..n]);
        }
        Lz4("zeros", new byte[StreamFormat.PageSize]);
        Lz4("sparse", Page(6, compressible: true));
        var delta = new byte[StreamFormat.PageSize];
        delta[100] = 1; delta[4000] = 0x80;
        Lz4("xor-delta", delta);
        Lz4("text", Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("remus checkpoint ", 241)))[..StreamFormat.PageSize]);
    }
}
