#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in build-fuzz/ and runs each for SECONDS seconds
# (default 60), starting from the committed corpus (tests/fuzz/corpus/<target>, never
# written to) plus what earlier runs found (build-fuzz/fuzz/corpus/<target>).
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]     targets: event_json agent_json capi ingest_body
#
# Prints each target's executions and exits non-zero if any target crashed, leaked, timed
# out or broke an invariant; the input that did it is in build-fuzz/fuzz/artifacts/<target>/,
# and `build-fuzz/tests/fuzz/fuzz_<target> FILE` (or fuzz_replay_<target> FILE of any build)
# runs it again. Environment: AGENTBURN_FUZZ_JOBS (build jobs), AGENTBURN_FUZZ_ARGS (more
# libFuzzer flags), AGENTBURN_FUZZ_STRICT=1 (known issues are failures too),
# AGENTBURN_FUZZ_BUILD (the build folder, default build-fuzz).
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-60}
shift || true
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 1)); then
  echo "usage: $0 [SECONDS] [TARGET...]" >&2
  exit 2
fi
targets=("$@")
((${#targets[@]})) || targets=(event_json agent_json capi ingest_body)

build=${AGENTBURN_FUZZ_BUILD:-build-fuzz}
out=$build/fuzz
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DAGENTBURN_BUILD_FUZZERS=ON -DAGENTBURN_BUILD_TESTS=ON -DAGENTBURN_BUILD_TOOLS=ON \
  -DAGENTBURN_BUILD_EXAMPLES=OFF >/dev/null
executables=()
for t in "${targets[@]}"; do executables+=("fuzz_$t"); done
cmake --build "$build" -j"${AGENTBURN_FUZZ_JOBS:-$(nproc)}" --target "${executables[@]}"

# Inputs larger than a target's limit only test the size check; the server takes bodies up
# to 16 MiB, but a body of many events says as much in less.
max_len() {
  case $1 in
    ingest_body) echo 262144 ;;
    *) echo 70000 ;;
  esac
}

export TMPDIR="$PWD/$out/tmp"  # the C ABI target's buffer folders
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:abort_on_error=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-}:print_stacktrace=1:halt_on_error=1"
failed=()
summary=()
for t in "${targets[@]}"; do
  mkdir -p "$out/corpus/$t" "$out/artifacts/$t" "$TMPDIR"
  rm -rf "$TMPDIR"/agentburn-fuzz-*  # left by a run that crashed
  log="$out/$t.log"
  echo "== fuzz_$t: ${seconds}s"
  rc=0
  "$build/tests/fuzz/fuzz_$t" "$out/corpus/$t" "tests/fuzz/corpus/$t" \
    -dict=tests/fuzz/json.dict -max_len="$(max_len "$t")" -timeout=25 -rss_limit_mb=4096 \
    -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$out/artifacts/$t/" \
    ${AGENTBURN_FUZZ_ARGS:-} >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 || true)
  if ((rc != 0)); then
    failed+=("$t")
    summary+=("$(printf '%-12s FAILED (exit %d) after %s executions; see %s' "$t" "$rc" "${runs:-?}" "$log")")
    echo "-- fuzz_$t failed (exit $rc); the end of its log:"
    tail -60 "$log"
    ls -1 "$out/artifacts/$t" 2>/dev/null | sed 's/^/   artifact: /' || true
  else
    summary+=("$(printf '%-12s %10s executions in %ss, %s' "$t" "${runs:-?}" "$seconds" "${cov:-cov: ?}")")
  fi
done

echo
echo "== fuzz summary"
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "failed: ${failed[*]}"
  exit 1
fi
