#!/usr/bin/env bash
# Container images of Kommerce, built daemonlessly with Debian's podman from the binaries the
# workspace builds — no registry is reached, no base image is pulled:
#
#   scripts/images.sh                     # release build -> kommerce/<name>:<version> + tars
#   scripts/images.sh --profile debug     # from target/debug (the smoke test's, faster)
#
# The base is made here: FROM scratch, the shared libraries the binaries need (from ldd), the
# CA certificates, /etc/passwd and /etc/group with the nonroot user (uid/gid 65532) — a few MB,
# no shell, no package manager. Each image adds one binary, runs as 65532, and carries the OCI
# labels (org.opencontainers.image.*). Every image is also saved as a docker-archive tar (what
# `docker load` and `kind load image-archive` take) in $KOMMERCE_STATE_DIR/images/.
#
# Images: user item order pay review image (the services), operator, cli, and web (the
# storefront's files from scripts/web.sh served by `kommerce web`: no Node.js at run time).
# Dockerfile at the root builds the same images where a Docker engine runs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE_DIR="${KOMMERCE_STATE_DIR:-$HOME/.cache/kommerce}"
export CONTAINERS_CONF="$ROOT/containers/containers.conf"
say() { printf 'images: %s\n' "$*"; }
die() {
    printf 'images: ERROR: %s\n' "$*" >&2
    exit 1
}
# shellcheck source=lib.sh
source "$ROOT/scripts/lib.sh"

PROFILE=release
while (($#)); do
    case $1 in
    --profile) PROFILE=$2; shift 2 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) die "unknown argument $1" ;;
    esac
done

ensure_podman() {
    if have podman && have runc; then return 0; fi
    [[ $(id -u) -eq 0 ]] || die "podman and runc are missing and not root: apt-get install -y podman runc"
    say "installing podman and runc with apt-get..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y podman runc >>"$STATE_DIR/apt.log" 2>&1 ||
        { DEBIAN_FRONTEND=noninteractive apt-get update >>"$STATE_DIR/apt.log" 2>&1 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y podman runc >>"$STATE_DIR/apt.log" 2>&1; } ||
        die "apt-get install podman runc failed (log: $STATE_DIR/apt.log)"
}

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN_DIR="${KOMMERCE_BIN_DIR:-$TARGET/$PROFILE}"
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n 1)
REVISION=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# name binary
IMAGES=(
    "user kommerce-user"
    "item kommerce-item"
    "order kommerce-order"
    "pay kommerce-pay"
    "review kommerce-review"
    "image kommerce-image"
    "operator kommerce-operator"
    "cli kommerce"
    "web kommerce"
)

build_binaries() {
    local flag=()
    [[ $PROFILE == release ]] && flag=(--release)
    say "building the binaries ($PROFILE)"
    (cd "$ROOT" && cargo build --locked "${flag[@]}" -p kommerce -p kommerce-operator -p kommerce-user \
        -p kommerce-item -p kommerce-order -p kommerce-pay -p kommerce-review -p kommerce-image)
}

# The base: the libraries every binary needs, CA certificates, the nonroot user.
make_base() {
    local root=$1 bin lib
    mkdir -p "$root/etc/ssl/certs" "$root/tmp"
    chmod 1777 "$root/tmp"
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/" ||
        die "no CA certificates at /etc/ssl/certs/ca-certificates.crt (apt-get install ca-certificates)"
    for entry in "${IMAGES[@]}"; do
        bin="$BIN_DIR/${entry#* }"
        [[ -x $bin ]] || die "$bin missing: build it first"
        for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
            mkdir -p "$root$(dirname "$lib")"
            cp -L "$lib" "$root$lib"
        done
    done
}

labels() {
    local title=$1 description=$2
    printf -- '--label\norg.opencontainers.image.%s\n' \
        "title=$title" "description=$description" "version=$VERSION" "revision=$REVISION" \
        "created=$CREATED" "source=https://kommerce.dev/source" "licenses=Apache-2.0" \
        "vendor=Kommerce"
}

main() {
    mkdir -p "$STATE_DIR/images"
    ensure_podman
    [[ ${KOMMERCE_IMAGES_SKIP_BUILD:-0} == 1 ]] || build_binaries
    bash "$ROOT/scripts/web.sh"
    work=$(mktemp -d)
    trap '[[ -n ${work:-} ]] && rm -rf "$work"' EXIT
    make_base "$work/base/root"
    printf 'FROM scratch\nCOPY root/ /\nUSER 65532:65532\n' >"$work/base/Containerfile"
    say "base image kommerce/base:$VERSION ($(du -sh "$work/base/root" | cut -f1))"
    podman build -q -t "kommerce/base:$VERSION" "$work/base" >/dev/null
    local name bin
    for entry in "${IMAGES[@]}"; do
        name=${entry%% *}
        bin=${entry#* }
        mkdir -p "$work/$name"
        cp "$BIN_DIR/$bin" "$work/$name/$bin"
        local files="" entrypoint="\"/usr/local/bin/$bin\""
        if [[ $name == web ]]; then
            cp -r "$ROOT/web/dist" "$work/$name/dist"
            files="COPY dist/ /srv/web/"
            entrypoint="$entrypoint, \"web\", \"--dir\", \"/srv/web\""
        fi
        cat >"$work/$name/Containerfile" <<CONTAINERFILE
FROM kommerce/base:$VERSION
COPY $bin /usr/local/bin/$bin
$files
USER 65532:65532
EXPOSE 8080
ENTRYPOINT [$entrypoint]
CONTAINERFILE
        mapfile -t label_args < <(labels "kommerce-$name" "Kommerce $name ($bin)")
        # podman qualifies a short name with localhost/; Kubernetes with docker.io/. The tar
        # carries the name a pod asks for (kommerce/<name> is docker.io/kommerce/<name>), so a
        # kind node that loaded it never pulls one of that name from a registry.
        podman build -q "${label_args[@]}" -t "kommerce/$name:$VERSION" \
            -t "docker.io/kommerce/$name:$VERSION" "$work/$name" >/dev/null
        rm -f "$STATE_DIR/images/$name.tar"
        podman save -q --format docker-archive -o "$STATE_DIR/images/$name.tar" "docker.io/kommerce/$name:$VERSION"
        say "kommerce/$name:$VERSION -> $STATE_DIR/images/$name.tar ($(du -h "$STATE_DIR/images/$name.tar" | cut -f1))"
    done
    # The layers of the images these replaced, so repeated builds do not fill the disk.
    podman image prune -f >/dev/null
}

main "$@"; exit $? # one line: safe if this file is edited while running
