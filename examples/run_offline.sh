#!/bin/sh
# Runs an example offline on a fresh buffer root, and checks that it exits 0 and prints a
# line matching PATTERN (an extended regular expression).
# Usage: run_offline.sh PATTERN PROGRAM [ARGUMENTS...]
set -u
pattern=$1
shift
root=$(mktemp -d "${TMPDIR:-/tmp}/agentburn-example-XXXXXX") || exit 1
trap 'rm -rf "$root"' EXIT

out=$(env -u AGENTBURN_ENDPOINT -u AGENTBURN_API_KEY AGENTBURN_BUFFER_DIR="$root" "$@")
status=$?
printf '%s\n' "$out"
if [ "$status" -ne 0 ]; then
  echo "FAILED: $1 exited with status $status" >&2
  exit 1
fi
if ! printf '%s\n' "$out" | grep -Eq -- "$pattern"; then
  echo "FAILED: no line of the output matches: $pattern" >&2
  exit 1
fi
