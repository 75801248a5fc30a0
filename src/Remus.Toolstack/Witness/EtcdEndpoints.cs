using Etcdserverpb;
using Grpc.Core;
using Grpc.Net.Client;

namespace Remus.Toolstack.Witness;

/// <summary>
/// The etcd members named by the URL list, one gRPC channel each, with failover: a call goes to the member that last
/// answered and, when it fails (unreachable, deadline passed, no leader), to the next, each try with its own deadline.
/// We use the generated etcd v3 gRPC stubs from dotnet-etcd directly (not its EtcdClient) so that no hidden retry or
/// backoff can stretch a keep-alive past its deadline: every try is bounded, and so the whole round.
/// </summary>
internal sealed class EtcdEndpoints : IDisposable
{
    private readonly GrpcChannel[] _channels;
    private int _current;

    public EtcdEndpoints(IReadOnlyList<string> urls)
    {
        if (urls.Count == 0) throw new ArgumentException("the witness needs at least one etcd URL");
        Urls = urls.ToArray();
        _channels = new GrpcChannel[Urls.Count];
        for (int i = 0; i < Urls.Count; i++)
        {
            if (!Uri.TryCreate(Urls[i], UriKind.Absolute, out var uri) || (uri.Scheme != "http" && uri.Scheme != "https"))
                throw new ArgumentException($"witness URL '{Urls[i]}' is not http://host:port or https://host:port");
            _channels[i] = GrpcChannel.ForAddress(uri, new GrpcChannelOptions
            {
                HttpHandler = new SocketsHttpHandler
                {
                    ConnectTimeout = TimeSpan.FromSeconds(2),
                    EnableMultipleHttp2Connections = true,
                    KeepAlivePingDelay = TimeSpan.FromSeconds(5),
                    KeepAlivePingTimeout = TimeSpan.FromSeconds(2),
                },
                // Failover is ours: a failed try goes to the next member at once, never a retry on the same one.
                MaxRetryAttempts = 0,
            });
        }
    }

    /// <summary>The URLs as given.</summary>
    public IReadOnlyList<string> Urls { get; }

    /// <summary>"http://a, http://b" for messages.</summary>
    public string Describe() => string.Join(", ", Urls);

    /// <summary>
    /// Runs <paramref name="call"/> against the members in turn, starting with the one that last answered, each try
    /// with <paramref name="perTry"/> as its deadline, until one answers. Throws <see cref="WitnessException"/> naming
    /// every endpoint and its error when none does; a cancellation of <paramref name="cancel"/> is thrown as such.
    /// </summary>
    /// (A member that answers with a refusal throws <see cref="EtcdRefusedException"/> at once.)
    public async Task<T> CallAsync<T>(string what, TimeSpan perTry, Func<CallInvoker, CallOptions, Task<T>> call, CancellationToken cancel)
    {
        var errors = new List<string>();
        int start = Volatile.Read(ref _current);
        for (int k = 0; k < _channels.Length; k++)
        {
            int i = (start + k) % _channels.Length;
            cancel.ThrowIfCancellationRequested();
            var options = new CallOptions(deadline: DateTime.UtcNow + perTry, cancellationToken: cancel);
            try
            {
                var result = await call(_channels[i].CreateCallInvoker(), options).ConfigureAwait(false);
                Volatile.Write(ref _current, i);
                return result;
            }
            catch (RpcException e) when (!cancel.IsCancellationRequested && !MemberProblem(e.StatusCode))
            {
                // The member answered and refused (a lease not found, a malformed request): no other member would say
                // otherwise, so no failover, and no "unreachable".
                throw new EtcdRefusedException(what, e.StatusCode, $"the witness refused to {what}: {Short(e)}", e);
            }
            catch (RpcException e) when (!cancel.IsCancellationRequested)
            {
                errors.Add($"{Urls[i]}: {Short(e)}");
            }
            catch (HttpRequestException e) when (!cancel.IsCancellationRequested)
            {
                errors.Add($"{Urls[i]}: {e.Message}");
            }
        }
        throw new Remus.Checkpoint.Witness.WitnessException(
            $"witness unreachable: {what} failed on every etcd endpoint ({string.Join("; ", errors)})");
    }

    /// <summary>Errors that say this member cannot serve now (down, cut off, no leader, too slow): try the next one.</summary>
    private static bool MemberProblem(StatusCode code) => code is StatusCode.Unavailable or StatusCode.DeadlineExceeded
        or StatusCode.Cancelled or StatusCode.Unknown or StatusCode.Internal or StatusCode.ResourceExhausted or StatusCode.Aborted;

    /// <summary>The status and detail of a gRPC error without the stack.</summary>
    private static string Short(RpcException e) => e.StatusCode == StatusCode.DeadlineExceeded
        ? "no answer within the deadline"
        : $"{e.StatusCode}{(string.IsNullOrEmpty(e.Status.Detail) ? "" : ": " + e.Status.Detail)}";

    public static KV.KVClient Kv(CallInvoker invoker) => new(invoker);
    public static Lease.LeaseClient Leases(CallInvoker invoker) => new(invoker);

    public void Dispose()
    {
        foreach (var channel in _channels) channel.Dispose();
    }
}

/// <summary>An etcd member answered a call with a refusal (not a failure to reach it).</summary>
internal sealed class EtcdRefusedException(string what, StatusCode code, string message, Exception inner)
    : Exception(message, inner)
{
    public string What { get; } = what;
    public StatusCode Code { get; } = code;
}
