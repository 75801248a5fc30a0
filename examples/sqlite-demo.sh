#!/usr/bin/env bash
# Storage under Remus on one machine: a SQLite program (tests/guests/sqlite/bank.c, linked against Debian's static
# libsqlite3: apt-get install libsqlite3-dev) keeps its database on a volume, build/bank-primary; a backup keeps its
# copy under build/bank-backup (migrate-receive -r --volumes). The primary's VMM is killed with SIGKILL; the backup
# takes over with the database as of the last checkpoint and the program carries on. At the end, with the domain
# stopped, `bank check` reads the backup's copy natively: integrity_check, and every id the console printed is there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
remus="$here/../remus"
build="$here/build"
mkdir -p "$build"
gcc -static -O2 -o "$build/bank" "$here/../tests/guests/sqlite/bank.c" -lsqlite3 -lm -lpthread 2>/dev/null
export REMUS_RUN_DIR="${REMUS_RUN_DIR:-$(mktemp -d /tmp/remus-demo.XXXXXX)}"
rm -rf "$build/bank-primary" "$build/bank-backup" "$build/bank.log" "$build/bank-backup.log"
mkdir -p "$build/bank-primary"
backup_pid=""
cleanup() {
  "$remus" destroy bank >/dev/null 2>&1 || true
  [ -n "$backup_pid" ] && kill "$backup_pid" 2>/dev/null || true
}
trap cleanup EXIT

cat > "$build/bank.toml" <<TOML
name = "bank"
memory = 64
program = "bank"
args = ["wal", "/data/bank.db", "1500", "10"]
console_log = "bank.log"

[[volume]]
source = "bank-primary"
target = "/data"
TOML
echo "== 1. the bank in a detached domain, its database on the volume build/bank-primary (at /data)"
"$remus" create "$build/bank.toml"

port=$(( 20000 + RANDOM % 20000 ))
echo "== 2. the backup: remus migrate-receive -r --tcp-listen 127.0.0.1:$port --insecure --allow-path build --volumes build/bank-backup"
# Plain TCP on loopback (--insecure; see docs/security.md for TLS or a pre-shared key between hosts); the stream may
# name paths under build/ only (its console_log).
"$remus" migrate-receive -r --tcp-listen "127.0.0.1:$port" --insecure --allow-path "$build" --volumes "$build/bank-backup" 2>"$build/bank-backup.log" &
backup_pid=$!
for _ in $(seq 50); do grep -q waiting "$build/bank-backup.log" 2>/dev/null && break; sleep 0.2; done

echo "== 3. remus protect -i 50 --tcp 127.0.0.1:$port --insecure bank"
"$remus" protect -i 50 --tcp "127.0.0.1:$port" --insecure bank
sleep 2
primary=$("$remus" list | awk '$1 == "bank" { print $3 }')
echo "== 4. the primary's VMM (pid $primary) is killed with SIGKILL after: $(grep committed "$build/bank.log" | tail -n 1)"
kill -9 "$primary"
for _ in $(seq 100); do grep -q "Remus failover" "$build/bank-backup.log" && break; sleep 0.1; done
sed 's/^/   backup: /' "$build/bank-backup.log"

echo "== 5. the program carries on on the backup until id 1500"
wait "$backup_pid" || true
backup_pid=""
tail -n 3 "$build/bank.log" | sed 's/^/   /'
echo "== 6. the backup's copy, read natively now that the domain has stopped:"
"$build/bank" check "$build/bank-backup/data/bank.db" > "$build/bank-check.txt"
grep -v '^row' "$build/bank-check.txt" | sed 's/^/   /'
missing=$(comm -23 <(awk '$1 == "committed" { print $2 " " $3 }' "$build/bank.log" | sort -u) \
                   <(awk '$1 == "row" { print $2 " " $3 }' "$build/bank-check.txt" | sort -u) | wc -l)
echo "   $(awk '$1 == "row"' "$build/bank-check.txt" | wc -l) rows; ids printed but not in the database (or with another time): $missing"
[ "$missing" -eq 0 ]
