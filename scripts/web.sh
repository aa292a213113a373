#!/usr/bin/env bash
# The storefront (web/): install its packages, build it, test it. Idempotent and cached: npm ci
# runs only when package-lock.json changed, the build only when one of its inputs did (the
# sources, the lock file, the configuration, the platform's OpenAPI document its API types are
# generated from). Package install scripts never run; no tool downloads a browser.
#
#   scripts/web.sh          install + build -> web/dist (what `kommerce up` serves at /)
#   scripts/web.sh test     install + build + the unit tests (vitest) + the size budget
#
# The browser journeys (web/e2e) run from the Rust test `tests/tests/web`, against the
# platform as separate processes, with Debian's chromium (scripts/deps.sh browser).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/web"

say() { echo "web: $*"; }
command -v npm >/dev/null || { echo "web: npm is missing (install Node.js 20.19+)" >&2; exit 1; }

# The lock file's hash, recorded after a complete install.
installed=node_modules/.kommerce-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $installed || $(cat "$installed") != "$want" ]]; then
    say "npm ci"
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
    echo "$want" >"$installed"
fi

# Everything the build reads, hashed in a stable order.
inputs() {
    {
        find src public e2e scripts -type f ! -name 'schema.d.ts' 2>/dev/null
        ls index.html package.json package-lock.json tsconfig*.json vite.config.* 2>/dev/null
        echo ../docs/openapi/kommerce.json
    } | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1
}
built=node_modules/.kommerce-build.sha256
want=$(inputs)
if [[ ! -f $built || $(cat "$built") != "$want" || ! -f dist/index.html ]]; then
    say "npm run build"
    npm run --silent build
    echo "$want" >"$built"
fi

if [[ ${1:-} == test ]]; then
    say "npm test (vitest)"
    npm test --silent
    npm run --silent size
fi
