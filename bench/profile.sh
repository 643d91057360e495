#!/usr/bin/env bash
# Profiles the track path and delivery, the way BENCHMARKS.md's profile notes were made.
#
#   bench/profile.sh BUILD_DIR OUT_DIR
#
# BUILD_DIR is a build with -DAGENTBURN_BUILD_BENCH=ON (scripts/bench's build-bench/).
# Writes to OUT_DIR:
#   callgrind-{track,track-json,track-buffered}.txt  instruction shares of one call of
#       Client::track / track_json (callgrind, collection toggled on Client::track*), 20k calls
#   perf-track.txt      perf, whole process (with RocksDB's background threads), 300k tracks
#   perf-open.txt       perf of Client::open taking over a 1M-event backlog
#   strace-open.txt     syscall counts and times of that open
#   perf-drain-client.txt / perf-drain-server.txt   perf of a 200k-backlog drain, client
#       process and agentburn-server, recorded at the same time
#   python-cprofile.txt the Python package's track(), offline, under cProfile
# Needs perf (linux-perf), valgrind and python3. Takes about five minutes on 2 cores.
set -euo pipefail
build=${1:?usage: bench/profile.sh BUILD_DIR OUT_DIR}
out=${2:?usage: bench/profile.sh BUILD_DIR OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
child=$build/bench/agentburn_bench_child
server_bin=$build/tools/server/agentburn-server
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/agentburn-profile-XXXXXX")
server_pid=
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# perf report, inclusive ("children") shares per symbol, without perf's trailing columns.
report() {
  perf report -i "$1" --children --sort symbol --stdio -g none --percent-limit "${2:-1}" 2>/dev/null |
    grep '%' | sed 's/ *- *- *$//' | cut -c1-200 | grep -v '\] 0x0000' || true
}
# perf report, self shares per library and symbol.
report_self() {
  perf report -i "$1" --no-children --sort dso,symbol --stdio -g none --percent-limit "${2:-1}" 2>/dev/null |
    grep '%' | sed 's/ *- *- *$//' | cut -c1-200 || true
}

echo "[callgrind: track, track_json, buffered track]"
for mode in "track 0 process" "track-json 1 process" "track-buffered 0 buffered"; do
  set -- $mode
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.$1" --toggle-collect='agentburn::Client::track*' \
    "$child" track --root "$work/cg-$1" --count 20000 --json "$2" --durability "$3" >/dev/null 2>&1
  callgrind_annotate --inclusive=yes "$work/cg.$1" >"$work/cg.$1.txt" 2>/dev/null
  sed -n '/^Ir/,$p' "$work/cg.$1.txt" | cut -c1-220 | sed -n '1,60p' >"$out/callgrind-$1.txt"
  rm -rf "$work/cg-$1"
done

echo "[perf: 300k tracks, process durability]"
perf record -q -F 4000 --call-graph dwarf,16384 -o "$work/track.data" \
  "$child" track --root "$work/perf-track" --count 300000 >/dev/null 2>&1
{ echo "## inclusive"; report "$work/track.data" 1; echo; echo "## self"; report_self "$work/track.data" 0.7; } >"$out/perf-track.txt"
rm -rf "$work/perf-track" "$work/track.data"

echo "[a 1M-event backlog; perf and strace of the open that takes it over]"
"$child" track --root "$work/backlog" --count 1000000 >/dev/null
cp -r "$work/backlog" "$work/backlog2"
perf record -q -F 2000 --call-graph dwarf,16384 -o "$work/open.data" "$child" open --root "$work/backlog" >"$work/open.json" 2>&1
{ cat "$work/open.json"; echo "## inclusive"; report "$work/open.data" 2; } >"$out/perf-open.txt"
rm -f "$work/open.data"
strace -f -c -o "$work/strace.txt" "$child" open --root "$work/backlog2" >/dev/null
sort -k2 -n -r "$work/strace.txt" | sed -n '1,15p' >"$out/strace-open.txt"
rm -rf "$work/backlog" "$work/backlog2"

echo "[perf: a 200k backlog drained to agentburn-server, both processes]"
key=profile-key
"$server_bin" --listen 127.0.0.1:0 --data "$work/server" --api-key "$key" --quiet >"$work/server.out" &
server_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/server.out" && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/server.out")
agent=$(curl -s -X POST "$url/api/agents" -H 'Content-Type: application/json' -d '{"name":"profile"}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
"$child" track --root "$work/drain" --count 200000 --agent "$agent" >/dev/null
perf record -q -F 2000 --call-graph dwarf,16384 -o "$work/server.data" -p "$server_pid" &
perf_server=$!
sleep 0.5
perf record -q -F 2000 --call-graph dwarf,16384 -o "$work/client.data" \
  "$child" drain --root "$work/drain" --url "$url" --key "$key" >"$work/drain.json" 2>&1
kill -INT "$perf_server"
wait "$perf_server" || true
{ cat "$work/drain.json"; echo "## inclusive"; report "$work/client.data" 1.5; echo; echo "## self"; report_self "$work/client.data" 1; } >"$out/perf-drain-client.txt"
{ echo "## inclusive"; report "$work/server.data" 1.5; echo; echo "## self"; report_self "$work/server.data" 1; } >"$out/perf-drain-server.txt"
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=

echo "[cProfile: the Python package's track, offline]"
PYTHONPATH="$here/../bindings/python${PYTHONPATH:+:$PYTHONPATH}" \
AGENTBURN_LIBRARY="${AGENTBURN_LIBRARY:-$build/libagentburn.so}" \
  python3 - "$work/py" >"$out/python-cprofile.txt" <<'EOF'
import cProfile, pstats, sys
import agentburn
c = agentburn.AgentBurn(None, None, "agt_profile", buffer_dir=sys.argv[1])
def loop():
    for _ in range(50000):
        c.track("anthropic", 0.085, model="claude-3.5-sonnet", operation="llm_call",
                inputTokens=12500, outputTokens=3200)
cProfile.run("loop()", sys.argv[1] + ".prof")
c.close(timeout=0)
pstats.Stats(sys.argv[1] + ".prof").sort_stats("tottime").print_stats(15)
EOF
echo "profiles in $out"
