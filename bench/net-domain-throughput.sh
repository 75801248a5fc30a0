#!/usr/bin/env bash
# Bulk TCP throughput into and out of a whole domain (unprotected), beside nothing else running: tests/guests/net-interop/
# peer.c runs in the domain (commands on its console) and natively in a network namespace this script makes and deletes;
# the domain's tap is in that namespace. Prints Gbit/s per run and the median. Needs root, ip, gcc.
#   bench/net-domain-throughput.sh [--platform ptrace|kvm] [--runs N] [--mib M]
set -euo pipefail
cd "$(dirname "$0")/.."
PLAT=ptrace RUNS=3 MIB=256
while [ $# -gt 0 ]; do case "$1" in --platform) PLAT=$2; shift 2;; --runs) RUNS=$2; shift 2;; --mib) MIB=$2; shift 2;; *) echo "usage: $0 [--platform ptrace|kvm] [--runs N] [--mib M]" >&2; exit 2;; esac; done
CLI=src/Remus.Cli/bin/Release/net10.0/remus.dll
[ -f "$CLI" ] || dotnet build src/Remus.Cli -c Release -v q -clp:ErrorsOnly >/dev/null
W=$(mktemp -d /tmp/remus-thr.XXXXXX); NS=remus-b-thr$$
cleanup() { exec 4>&- 2>/dev/null || true; [ -n "${RUN:-}" ] && kill "$RUN" 2>/dev/null; [ -n "${P_PID:-}" ] && kill "$P_PID" 2>/dev/null; ip netns del "$NS" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
gcc -static -O2 -o "$W/peer" tests/guests/net-interop/peer.c
ip netns add "$NS"; ip -n "$NS" link set lo up
mkfifo "$W/in"
REMUS_RUN_DIR=$W/run dotnet "$CLI" run --platform "$PLAT" --memory 256 \
  --net tap=rbthr0,address=10.77.0.2/24,host=10.77.0.1/24,netns="$NS" "$W/peer" < "$W/in" > "$W/out" 2> "$W/err" &
RUN=$!
exec 4>"$W/in"
echo "listen 9000" >&4
for _ in $(seq 50); do grep -q '^ok' "$W/out" 2>/dev/null && break; sleep 0.2; done
coproc P { ip netns exec "$NS" "$W/peer"; }
N=$((MIB << 20)); into=(); out=()
ask() { echo "$1" >&"${P[1]}"; read -r -u "${P[0]}" reply; } # sets $reply (no subshell: it would not have the coproc's fds)
last() { local n=$1; for _ in $(seq 600); do [ "$(grep -c '^ok' "$W/out")" -ge "$n" ] && break; sleep 0.1; done; tail -1 "$W/out"; }
lines=1
for i in $(seq "$RUNS"); do
  ask "connect 10.77.0.2 9000"; cid=$(echo "$reply" | awk '{print $2}')
  echo "accept 1" >&4; lines=$((lines + 1)); sid=$(last $lines | awk '{print $2}')
  echo "sink $sid $N" >&4; lines=$((lines + 1))
  ask "source $cid $N"; ns=$(echo "$reply" | awk '{print $3}'); last $lines >/dev/null
  into+=("$(awk -v n="$N" -v t="$ns" 'BEGIN{printf "%.2f", n*8/t}')")
  echo "sink $cid $N" >&"${P[1]}"; echo "source $sid $N" >&4; lines=$((lines + 1))
  read -r -u "${P[0]}" reply; ns=$(echo "$reply" | awk '{print $3}'); last $lines >/dev/null
  out+=("$(awk -v n="$N" -v t="$ns" 'BEGIN{printf "%.2f", n*8/t}')")
  ask "close $cid"; echo "close $sid" >&4; lines=$((lines + 1))
  echo "run $i: into the domain ${into[-1]} Gbit/s, out of it ${out[-1]} Gbit/s ($MIB MiB each way, $PLAT)"
done
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
echo "net domain throughput ($PLAT, unprotected): into $(med "${into[@]}") Gbit/s, out $(med "${out[@]}") Gbit/s (median of $RUNS)"
