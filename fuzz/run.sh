#!/usr/bin/env bash
# fuzz/run.sh TARGET SECONDS [EXECS] — coverage-guided fuzzing of one Remus input parser with AFL++ and SharpFuzz.
#
# Builds fuzz/Remus.Fuzz into $FUZZ_OUT/bin, instruments the Remus assemblies (and the parsers they lean on:
# Tomlyn, K4os LZ4) with `sharpfuzz` once, then runs afl-fuzz for SECONDS on fuzz/corpus/TARGET and prints the
# executions and the findings. With EXECS it stops at that many executions if that comes before SECONDS. Findings stay in $FUZZ_OUT/TARGET/default/{crashes,hangs}; replay them with
#   dotnet $FUZZ_OUT/bin/Remus.Fuzz.dll TARGET --replay $FUZZ_OUT/TARGET/default/crashes
# Needs: afl++ (Debian package), SharpFuzz.CommandLine 2.3.0 (`dotnet tool install --tool-path /tmp/sftool
# SharpFuzz.CommandLine --version 2.3.0`; SHARPFUZZ=path/to/sharpfuzz if elsewhere). Runs at nice 19, one core.
set -euo pipefail

target=${1:?usage: fuzz/run.sh TARGET SECONDS (targets: dotnet Remus.Fuzz.dll --list)}
seconds=${2:?usage: fuzz/run.sh TARGET SECONDS [EXECS]}
execs=${3:-}
[[ -z $execs || $execs =~ ^[0-9]+$ ]] || { echo "EXECS must be a number of executions, not '$execs'" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
out=${FUZZ_OUT:-/tmp/remus-fuzz}
bin=$out/bin
sharpfuzz=${SHARPFUZZ:-$(command -v sharpfuzz || echo /tmp/sftool/sharpfuzz)}

[[ -d $here/corpus/$target ]] || { echo "no corpus fuzz/corpus/$target" >&2; exit 2; }
command -v afl-fuzz >/dev/null || { echo "afl-fuzz not found: apt-get install afl++" >&2; exit 2; }
[[ -x $sharpfuzz ]] || { echo "sharpfuzz not found: dotnet tool install --tool-path /tmp/sftool SharpFuzz.CommandLine --version 2.3.0" >&2; exit 2; }

# Build and instrument once per source state (a stamp of the sources' newest change).
stamp=$(find "$here/Remus.Fuzz" "$here/../src" -name '*.cs' -newer "$bin/.instrumented" 2>/dev/null | head -1 || true)
if [[ ! -f $bin/.instrumented || -n $stamp ]]; then
  rm -rf "$bin"
  mkdir -p "$out"
  nice -n 19 dotnet build "$here/Remus.Fuzz/Remus.Fuzz.csproj" -c Release -o "$bin" -v q -clp:ErrorsOnly > "$out/build.log" 2>&1 \
    || { cat "$out/build.log" >&2; exit 1; }
  for dll in Remus.Checkpoint Remus.Sandbox Remus.Toolstack Tomlyn K4os.Compression.LZ4; do
    [[ -f $bin/$dll.dll ]] && "$sharpfuzz" "$bin/$dll.dll" >/dev/null
  done
  touch "$bin/.instrumented"
fi

rm -rf "${out:?}/$target"
mkdir -p "$out/$target"
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export DOTNET_TieredPGO=0
set +e
nice -n 19 afl-fuzz -V "$seconds" ${execs:+-E "$execs"} -t 5000 -m none -i "$here/corpus/$target" -o "$out/$target" \
  -- dotnet "$bin/Remus.Fuzz.dll" "$target" > "$out/$target/afl.log" 2>&1
rc=$?
set -e
stats=$out/$target/default/fuzzer_stats
if [[ ! -f $stats ]]; then
  echo "afl-fuzz did not start (exit $rc); see $out/$target/afl.log:" >&2
  tail -20 "$out/$target/afl.log" >&2
  exit 1
fi
get() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
crashes=$(find "$out/$target/default/crashes" -type f -name 'id:*' | wc -l)
hangs=$(find "$out/$target/default/hangs" -type f -name 'id:*' | wc -l)
echo "$target: $(get execs_done) execs in $(get run_time) s ($(get execs_per_sec)/s), corpus $(get corpus_count), coverage $(get bitmap_cvg), crashes $crashes, hangs $hangs"
if (( crashes + hangs > 0 )); then
  echo "findings in $out/$target/default/{crashes,hangs}; replay: dotnet $bin/Remus.Fuzz.dll $target --replay $out/$target/default/crashes"
  exit 1
fi
