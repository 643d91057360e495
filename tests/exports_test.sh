#!/usr/bin/env bash
# libagentburn.so exports the C ABI (ab_*) and nothing else.
set -euo pipefail
lib=$1
others=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^ab_' || true)
if [[ -n "$others" ]]; then
  echo "exported symbols other than ab_*:"; echo "$others" | head -20; exit 1
fi
count=$(nm -D --defined-only "$lib" | grep -c ' ab_')
echo "exports: $count ab_* symbols, nothing else"
