using Etcdserverpb;
using Google.Protobuf;

namespace Remus.Toolstack.Witness;

/// <summary>The witness's keys in etcd and the transaction pieces built on them.</summary>
internal static class EtcdKeys
{
    /// <summary>Every protected domain's keys live under this prefix.</summary>
    public const string Prefix = "/remus/domains/";

    /// <summary>/remus/domains/&lt;name&gt;/active: held by the active copy under its lease.</summary>
    public static ByteString Active(string domain) => ByteString.CopyFromUtf8($"{Prefix}{domain}/active");

    /// <summary>
    /// /remus/domains/&lt;name&gt;/unprotected, under no lease: written (and confirmed) by a primary that lost its backup
    /// before it releases any output unprotected; a backup's take-over transaction requires it absent, since its
    /// checkpoint is older than what the world has seen since. A primary's Acquire deletes it (a new protection).
    /// </summary>
    public static ByteString Unprotected(string domain) => ByteString.CopyFromUtf8($"{Prefix}{domain}/unprotected");

    public static RequestOp Delete(ByteString key) => new() { RequestDeleteRange = new DeleteRangeRequest { Key = key } };

    /// <summary>The domain name of an active key, or null for any other key under the prefix.</summary>
    public static string? DomainOf(ByteString key)
    {
        string s = key.ToStringUtf8();
        const string suffix = "/active";
        if (!s.StartsWith(Prefix, StringComparison.Ordinal) || !s.EndsWith(suffix, StringComparison.Ordinal)) return null;
        string name = s[Prefix.Length..^suffix.Length];
        return name.Length == 0 || name.Contains('/') ? null : name;
    }

    /// <summary>The range end that makes a range request cover every key starting with <paramref name="prefix"/>.</summary>
    public static ByteString RangeEnd(ByteString prefix)
    {
        byte[] end = prefix.ToByteArray();
        for (int i = end.Length - 1; i >= 0; i--)
        {
            if (end[i] < 0xff) { end[i]++; return ByteString.CopyFrom(end, 0, i + 1); }
        }
        return ByteString.CopyFrom(0); // the whole key space
    }

    /// <summary>The key does not exist (never created, or its lease expired or was revoked).</summary>
    public static Compare Absent(ByteString key) =>
        new() { Key = key, Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = 0 };

    /// <summary>The key is unchanged since <paramref name="modRevision"/>.</summary>
    public static Compare Unchanged(ByteString key, long modRevision) =>
        new() { Key = key, Target = Compare.Types.CompareTarget.Mod, Result = Compare.Types.CompareResult.Equal, ModRevision = modRevision };

    /// <summary>The key is attached to lease <paramref name="leaseId"/> (so it is still ours).</summary>
    public static Compare HeldBy(ByteString key, long leaseId) =>
        new() { Key = key, Target = Compare.Types.CompareTarget.Lease, Result = Compare.Types.CompareResult.Equal, Lease = leaseId };

    public static RequestOp Put(ByteString key, WitnessValue value, long leaseId) =>
        new() { RequestPut = new PutRequest { Key = key, Value = ByteString.CopyFrom(value.ToBytes()), Lease = leaseId } };

    public static RequestOp Get(ByteString key) => new() { RequestRange = new RangeRequest { Key = key } };

    /// <summary>The key's current entry from a transaction whose failure branch was <see cref="Get"/>; null when absent.</summary>
    public static Mvccpb.KeyValue? Found(TxnResponse txn) =>
        txn.Responses.Count > 0 && txn.Responses[0].ResponseRange is { Kvs.Count: > 0 } range ? range.Kvs[0] : null;

    /// <summary>etcd leases have whole seconds: at least the TTL asked for (the server may raise it to its minimum).</summary>
    public static long TtlSeconds(TimeSpan ttl) => Math.Max(1, (long)Math.Ceiling(ttl.TotalSeconds));

    /// <summary>The TTL etcd really grants for <paramref name="ttl"/> (whole seconds, at least one).</summary>
    public static TimeSpan Granted(TimeSpan ttl) => TimeSpan.FromSeconds(TtlSeconds(ttl));
}
