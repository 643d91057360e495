#!/bin/sh
# Installs the package's npm dependencies from package-lock.json (npm ci) unless node_modules
# already holds exactly what the lock file names, so that the tests run from a clean clone
# and, once installed, offline.
set -eu
cd "$(dirname "$0")/.."
stamp=node_modules/.agentburn-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "node_modules is up to date with package-lock.json"
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
