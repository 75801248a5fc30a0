#!/usr/bin/env bash
# The main job: builds the sample programs and shows them running in Remus domains.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
remus="$here/../remus"
mkdir -p "$here/build"
for p in hello counter; do gcc -static -O2 -o "$here/build/$p" "$here/$p.c"; done
export REMUS_RUN_DIR="${REMUS_RUN_DIR:-$(mktemp -d /tmp/remus-demo.XXXXXX)}"

echo "== remus run: a static program in a domain, in the foreground"
"$remus" run --env GREETING=hi "$here/build/hello" one two
echo "   (exit status $?)"

echo
echo "== remus create: a detached domain from examples/counter.toml"
"$remus" destroy counter >/dev/null 2>&1 || true
rm -f "$here/build/counter.log"
"$remus" create "$here/counter.toml"
sleep 1
"$remus" list
echo "-- pause for 1 s: the counter stops, then goes on"
"$remus" pause counter
"$remus" list
sleep 1
"$remus" unpause counter
sleep 1
"$remus" destroy counter
echo "-- its console log:"
cat "$here/build/counter.log"
