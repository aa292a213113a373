#!/usr/bin/env bash
# The Secrets of manifests/overlays/kind, made once into manifests/overlays/kind/secrets/ (not
# committed): the Ed25519 key the user service signs access tokens with, the in-cluster
# PostgreSQL password and every component's database URL. Idempotent: existing files are kept.
set -euo pipefail

dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/manifests/overlays/kind/secrets"
mkdir -p "$dir"
umask 077
[[ -s $dir/signing-keys.pem ]] || openssl genpkey -algorithm ed25519 -out "$dir/signing-keys.pem"
if [[ ! -s $dir/postgres.env ]]; then
    printf 'password=%s\n' "$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)" >"$dir/postgres.env"
fi
password=$(sed -n 's/^password=//p' "$dir/postgres.env")
: >"$dir/database-urls.env"
for name in user item order pay review image; do
    printf '%s=postgres://kommerce:%s@kommerce-postgres.kommerce.svc:5432/kommerce_%s\n' \
        "$name" "$password" "$name" >>"$dir/database-urls.env"
done
echo "kind-secrets: $dir"
