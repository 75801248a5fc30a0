#!/usr/bin/env bash
# The second demo: the Remus paper's headline. A static HTTP server (tests/guests/net/http_server.c) runs in a
# protected domain whose network is a tap in a network namespace made for the demo; a client in that namespace
# (tests/guests/net/http_client.c: keep-alive connections opened before the failure, and fresh ones) and curl loop
# through it. The primary's VMM is killed with SIGKILL; the backup takes over, creating the tap again, and the clients
# carry on: no request fails, no connection is reset, and the server's counter they see has no gap and no repeat.
# Needs root (network namespaces, tap devices), ip (iproute2), curl and gcc. The namespace is removed at the end.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
remus="$here/../remus"
guests="$here/../tests/guests/net"
build="$here/build"
mkdir -p "$build"
for p in http_server http_client; do gcc -static -O2 -o "$build/$p" "$guests/$p.c" 2>/dev/null; done
export REMUS_RUN_DIR="${REMUS_RUN_DIR:-$(mktemp -d /tmp/remus-http-demo.XXXXXX)}"
tag=$(printf '%04x' $((RANDOM % 65536)))
ns="remus-demo-$tag"
net="10.77.$((RANDOM % 250 + 1))"
backup_pid="" client_pid="" curl_pid=""
cleanup() {
  touch "$build/stop" 2>/dev/null || true
  "$remus" destroy web >/dev/null 2>&1 || true
  for pid in $client_pid $curl_pid $backup_pid; do kill "$pid" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
  rm -f "$build/stop"
}
trap cleanup EXIT
progress() {
  local ok
  ok=$(grep progress "$build/client.log" 2>/dev/null | tail -n 1 | cut -d' ' -f2-3)
  echo "   http_client: ${ok:-starting}; curl: $(grep -c '^n=' "$build/curl.log") answers, the last $(grep '^n=' "$build/curl.log" | tail -n 1 | cut -d' ' -f1)"
}

echo "== 1. a network namespace for the demo: $ns (the clients live in it; the domain's tap is created in it)"
ip netns add "$ns"
ip -n "$ns" link set lo up

cat >"$build/web.toml" <<EOF
name = "web"
memory = 64
program = "$build/http_server"
args = ["8080"]
console_log = "$build/web.log"

[network]
tap = "rmdemo$tag"
netns = "$ns"
address = "$net.2/24"
host_address = "$net.1/24"
EOF
echo
echo "== 2. the HTTP server in a detached domain at $net.2:8080 (build/web.toml; its console: build/web.log)"
rm -f "$build/web.log" "$build/backup.log" "$build/client.log" "$build/curl.log" "$build/stop"
"$remus" create "$build/web.toml"
for _ in $(seq 100); do grep -q listening "$build/web.log" 2>/dev/null && break; sleep 0.1; done
ip netns exec "$ns" curl -sS "http://$net.2:8080/big?k=1" -o /dev/null -w "   GET /big?k=1 from the namespace: HTTP %{http_code}, %{size_download} bytes\n"

port=$(( 20000 + RANDOM % 20000 ))
echo
echo "== 3. the backup: remus migrate-receive -r --tcp-listen 127.0.0.1:$port --insecure, and remus protect -i 50 --insecure"
# Plain TCP on loopback (--insecure; see docs/security.md for TLS or a pre-shared key between hosts); the stream may
# name its console_log under build/ and the namespace $ns, nothing else.
"$remus" migrate-receive -r --tcp-listen "127.0.0.1:$port" --insecure --allow-path "$build" --allow-path "/run/netns/$ns" --timeout 1000 2>"$build/backup.log" &
backup_pid=$!
for _ in $(seq 50); do grep -q waiting "$build/backup.log" 2>/dev/null && break; sleep 0.2; done
"$remus" protect -i 50 --tcp "127.0.0.1:$port" --insecure web

echo
echo "== 4. the clients in the namespace: http_client (4 keep-alive connections + fresh ones) and curl in a loop"
ip netns exec "$ns" "$build/http_client" "$net.2" 8080 -k 4 -f 1 -s "$build/stop" >"$build/client.log" 2>&1 &
client_pid=$!
ip netns exec "$ns" sh "$guests/curl_loop.sh" "http://$net.2:8080/n" "$build/stop" >"$build/curl.log" 2>&1 &
curl_pid=$!
for i in 1 2 3; do
  sleep 1
  progress
done
"$remus" list
primary=$("$remus" list | awk '$1 == "web" { print $3 }')

echo
echo "== 5. the primary's VMM (pid $primary) is killed with SIGKILL"
before=$(grep -c '^n=' "$build/web.log")
kill -9 "$primary"
for _ in $(seq 100); do grep -q "Remus failover" "$build/backup.log" && break; sleep 0.1; done
sed 's/^/   backup: /' "$build/backup.log"
for i in 1 2 3 4; do
  sleep 1
  progress
done
"$remus" list

echo
echo "== 6. the clients stop; what they saw ($before answers before the kill):"
touch "$build/stop"
client_status=0 curl_status=0
wait "$client_pid" || client_status=$?
wait "$curl_pid" || curl_status=$?
client_pid="" curl_pid=""
grep -v '^progress\|^counters=' "$build/client.log" | sed 's/^/   http_client: /'
grep '^counters=' "$build/client.log" | cut -c1-200 | sed 's/^/   http_client: /'
grep '^curl_' "$build/curl.log" | sed 's/^/   curl: /'
# One set: every counter either client saw, each once, 1..max with no gap.
{ grep '^counters=' "$build/client.log" | cut -d= -f2 | tr ',' '\n' | awk -F- '{ b = ($2 == "") ? $1 : $2; for (n = $1; n <= b; n++) print n }'
  grep '^n=' "$build/curl.log" | sed 's/^n=\([0-9]*\) .*/\1/'; } | sort -n | awk '
  { if (NR > 1 && $1 == prev) dup++; else if ($1 != NR - dup) { if (!gap) printf "   GAP at %d\n", $1; gap = 1 } prev = $1 }
  END { printf "   %d answers, counters 1..%d: no gap %s, no repeat %s\n", NR, prev, gap ? "NO" : "yes", dup ? "NO" : "yes"; exit gap || dup }'
[ "$client_status" -eq 0 ] && [ "$curl_status" -eq 0 ] && echo "   no request failed, no connection was reset"
ip netns exec "$ns" curl -sS "http://$net.2:8080/quit" >/dev/null && echo "   the server (now on the backup) was told to quit"
