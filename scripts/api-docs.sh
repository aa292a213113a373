#!/usr/bin/env bash
# Install the API reference's offline assets (swagger-ui-dist, pinned by
# tools/api-docs/package-lock.json) into tools/api-docs/node_modules. Idempotent: nothing is
# done while the installed tree matches the lock file. Package install scripts never run.
set -euo pipefail
cd "$(dirname "$0")/../tools/api-docs"

say() { echo "api-docs: $*"; }

# The lock file's hash, recorded after a complete install.
stamp=node_modules/.kommerce-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
    exit 0
fi
command -v npm >/dev/null || { echo "api-docs: npm is missing (install Node.js)" >&2; exit 1; }
say "npm ci (swagger-ui-dist)"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
echo "$want" >"$stamp"
