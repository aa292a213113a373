#!/usr/bin/env bash
# The operator's test control plane: a real Kubernetes API server for CRDs and custom resources
# (upstream k8s.io/apiextensions-apiserver, wrapped by operator/control-plane/crdapiserver.go)
# in front of etcd, on loopback. Idempotent.
#
#   scripts/control-plane.sh [up]     build once (cached), start if not running, print KUBECONFIG
#   scripts/control-plane.sh build    only build (or confirm the cached build)
#   scripts/control-plane.sh status   is it running? (exit 1 if not)
#   scripts/control-plane.sh down     stop the processes this script started
#   scripts/control-plane.sh kubeconfig   print the kubeconfig path
#
# The binaries are built from Debian packages only: a private apt configuration (own sources,
# lists, cache and status; the system's apt state is never touched) downloads the Go sources of
# apiextensions-apiserver and its dependencies, a Go toolchain and etcd from the suite
# $KOMMERCE_CP_SUITE of the Debian mirror this machine already uses, extracts them with
# `dpkg -x`, and builds offline (GOPATH mode, no module proxy). The first build takes about
# 3 minutes; the result is cached under $KOMMERCE_STATE_DIR/control-plane/bin and reused until
# the wrapper source changes.
#
# What it serves: apiextensions.k8s.io and custom resources — no core API, no Deployments, no
# garbage collector, no admission webhooks. Authentication is a client certificate in the
# group system:masters (written into the kubeconfig).
#
# Environment:
#   KOMMERCE_STATE_DIR       state dir (default: $HOME/.cache/kommerce)
#   KOMMERCE_CP_PORT         API server port on 127.0.0.1 (default: 16443)
#   KOMMERCE_CP_ETCD_PORT    etcd client port on 127.0.0.1 (default: 12379; peer port +1)
#   KOMMERCE_CP_SUITE        Debian suite to take the packages from (default: sid)
#   KOMMERCE_CP_MIRROR       Debian mirror URI (default: the one in /etc/apt/sources*)
#   KOMMERCE_CP_GO_PACKAGE   Go toolchain package (default: the newest golang-1.NN-go in the suite)
#   KOMMERCE_CP_KEEP_BUILD=1 keep the downloaded packages and the build tree after a build
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WRAPPER_SRC="$REPO_DIR/operator/control-plane/crdapiserver.go"

STATE_DIR="${KOMMERCE_STATE_DIR:-$HOME/.cache/kommerce}"
CP_DIR="$STATE_DIR/control-plane"
BIN_DIR="$CP_DIR/bin"
BUILD_DIR="$CP_DIR/build"
RUN_DIR="$CP_DIR/run"
KUBECONFIG_PATH="$CP_DIR/kubeconfig"
BUILD_LOG="$CP_DIR/build.log"
STAMP="$BIN_DIR/build.stamp"

PORT="${KOMMERCE_CP_PORT:-16443}"
ETCD_PORT="${KOMMERCE_CP_ETCD_PORT:-12379}"
ETCD_PEER_PORT=$((ETCD_PORT + 1))
SUITE="${KOMMERCE_CP_SUITE:-sid}"

APISERVER_PACKAGE=golang-k8s-apiextensions-apiserver-dev
ETCD_PACKAGE=etcd-server

say() { printf 'control-plane: %s\n' "$*"; }
die() {
    printf 'control-plane: ERROR: %s\n' "$*" >&2
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }
log_tail() { [[ -f $1 ]] && tail -n "${2:-25}" "$1" | sed 's/^/    | /' >&2 || true; }

# ------------------------------------------------------------------ build

# The Debian mirror this machine uses (deb822 .sources files or the classic sources.list).
debian_mirror() {
    if [[ -n ${KOMMERCE_CP_MIRROR:-} ]]; then
        echo "$KOMMERCE_CP_MIRROR"
        return 0
    fi
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        uri=$(awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' "$f" |
            grep -E '/debian/?$' | head -n 1 || true)
        [[ -n $uri ]] && { echo "${uri%/}"; return 0; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; break } }' "$f" |
            grep -E '/debian/?$' | head -n 1 || true)
        [[ -n $uri ]] && { echo "${uri%/}"; return 0; }
    done
    return 1
}

wrapper_hash() { sha256sum "$WRAPPER_SRC" | cut -c1-16; }

cached_build_ok() {
    [[ -x $BIN_DIR/crdapiserver && -x $BIN_DIR/etcd && -f $STAMP ]] &&
        grep -qx "wrapper=$(wrapper_hash)" "$STAMP"
}

build() {
    [[ -f $WRAPPER_SRC ]] || die "wrapper source $WRAPPER_SRC is missing"
    if cached_build_ok; then
        say "using the cached build in $BIN_DIR ($(grep '^apiserver=' "$STAMP" | cut -d= -f2))"
        return 0
    fi
    have apt-get && have dpkg-deb && have dpkg || die "building needs apt-get and dpkg (Debian or a derivative)"
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [[ -f $keyring ]] || die "$keyring is missing (apt-get install debian-archive-keyring)"
    local mirror
    mirror=$(debian_mirror) || die "no Debian mirror found in /etc/apt/sources*; set KOMMERCE_CP_MIRROR"

    local start=$SECONDS apt_dir="$BUILD_DIR/apt"
    rm -rf "$BUILD_DIR"
    # The Go build cache lives beside the build tree: a failed build keeps it, so the next try
    # only compiles what is left.
    mkdir -p "$apt_dir"/{lists/partial,archives/partial} "$BUILD_DIR"/{root,gopath/src/crdapiserver} "$CP_DIR/gocache" "$BIN_DIR"
    : >"$apt_dir/status"
    : >"$BUILD_LOG"
    echo "deb [signed-by=$keyring] $mirror $SUITE main" >"$apt_dir/sources.list"
    local apt=(
        -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
        -o Dir::Etc::PreferencesParts=/nonexistent -o "Dir::Etc::Preferences=/nonexistent"
        -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::State::status=$apt_dir/status"
        -o "Dir::Cache=$apt_dir" -o "Dir::Cache::archives=$apt_dir/archives"
        -o Debug::NoLocking=1 -o "APT::Sandbox::User=$(id -un)"
        -o APT::Install-Recommends=false -o APT::Install-Suggests=false
    )
    say "building the API server from Debian $SUITE packages (about 3 minutes; log: $BUILD_LOG)"
    if ! apt-get "${apt[@]}" update >>"$BUILD_LOG" 2>&1; then
        log_tail "$BUILD_LOG"
        die "apt-get update of '$mirror $SUITE main' failed (network? mirror? log: $BUILD_LOG)"
    fi
    local go_pkg=${KOMMERCE_CP_GO_PACKAGE:-}
    if [[ -z $go_pkg ]]; then
        go_pkg=$(apt-cache "${apt[@]}" pkgnames golang-1. 2>/dev/null | grep -E '^golang-1\.[0-9]+-go$' | sort -V | tail -n 1 || true)
        [[ -n $go_pkg ]] || die "Debian $SUITE carries no golang-1.NN-go package any more; set KOMMERCE_CP_GO_PACKAGE or KOMMERCE_CP_SUITE"
    fi
    local pkg missing=()
    for pkg in "$APISERVER_PACKAGE" "$go_pkg" "$ETCD_PACKAGE"; do
        apt-cache "${apt[@]}" show "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) ||
        die "Debian $SUITE no longer carries: ${missing[*]} (the packages moved or were renamed; pick another suite with KOMMERCE_CP_SUITE, or adapt this script)"
    if ! apt-get "${apt[@]}" install --download-only -y "$APISERVER_PACKAGE" "$go_pkg" "$ETCD_PACKAGE" >>"$BUILD_LOG" 2>&1; then
        log_tail "$BUILD_LOG"
        die "apt-get could not resolve or download $APISERVER_PACKAGE $go_pkg $ETCD_PACKAGE from Debian $SUITE (dependencies moved? log: $BUILD_LOG)"
    fi

    local archives="$apt_dir/archives" deb go_ver="${go_pkg#golang-}"
    go_ver=${go_ver%-go}
    for deb in "$archives"/*-dev_*.deb "$archives"/golang-"$go_ver"-go_*.deb "$archives"/golang-"$go_ver"-src_*.deb "$archives"/"$ETCD_PACKAGE"_*.deb; do
        [[ -f $deb ]] || die "expected package file $deb was not downloaded"
        dpkg-deb -x "$deb" "$BUILD_DIR/root"
    done
    local apiserver_deb
    apiserver_deb=$(ls "$archives"/"$APISERVER_PACKAGE"_*.deb)
    local pkg_version git_version minor
    pkg_version=$(dpkg-deb -f "$apiserver_deb" Version)
    # Debian packages k8s.io/apiextensions-apiserver v0.X.Y, the library of Kubernetes v1.X.Y.
    git_version=$(sed -E 's/^([0-9]+:)?0\.([0-9]+)\.([0-9]+).*/v1.\2.\3/' <<<"$pkg_version")
    minor=$(cut -d. -f2 <<<"$git_version")

    cp "$WRAPPER_SRC" "$BUILD_DIR/gopath/src/crdapiserver/main.go"
    mkdir -p "$BUILD_DIR/debian-gopath"
    ln -sfn "$BUILD_DIR/root/usr/share/gocode/src" "$BUILD_DIR/debian-gopath/src"
    local goroot="$BUILD_DIR/root/usr/lib/go-$go_ver"
    [[ -x $goroot/bin/go ]] || die "$go_pkg did not contain $goroot/bin/go (package layout changed)"
    say "compiling apiextensions-apiserver $git_version ($pkg_version) with $go_pkg"
    if ! env GOROOT="$goroot" GOPATH="$BUILD_DIR/gopath:$BUILD_DIR/debian-gopath" GO111MODULE=off \
        GOTOOLCHAIN=local GOPROXY=off GOFLAGS= CGO_ENABLED=0 GOCACHE="$CP_DIR/gocache" \
        "$goroot/bin/go" build -trimpath -o "$BIN_DIR/crdapiserver.new" -ldflags "-s -w \
            -X k8s.io/component-base/version.gitVersion=$git_version \
            -X k8s.io/component-base/version.gitMajor=1 \
            -X k8s.io/component-base/version.gitMinor=$minor" crdapiserver >>"$BUILD_LOG" 2>&1; then
        log_tail "$BUILD_LOG" 40
        die "go build failed: $APISERVER_PACKAGE $pkg_version no longer builds with $WRAPPER_SRC (an API it uses changed?) (log: $BUILD_LOG)"
    fi
    install -m 0755 "$BUILD_DIR/root/usr/bin/etcd" "$BIN_DIR/etcd.new"
    "$BIN_DIR/etcd.new" --version >>"$BUILD_LOG" 2>&1 ||
        die "the etcd binary from Debian $SUITE does not run on this machine (log: $BUILD_LOG)"
    mv "$BIN_DIR/crdapiserver.new" "$BIN_DIR/crdapiserver"
    mv "$BIN_DIR/etcd.new" "$BIN_DIR/etcd"
    {
        echo "wrapper=$(wrapper_hash)"
        echo "apiserver=$git_version ($APISERVER_PACKAGE $pkg_version)"
        echo "go=$go_pkg $(dpkg-deb -f "$(ls "$archives"/"$go_pkg"_*.deb)" Version)"
        echo "etcd=$ETCD_PACKAGE $(dpkg-deb -f "$(ls "$archives"/"$ETCD_PACKAGE"_*.deb)" Version)"
        echo "suite=$SUITE"
        echo "built=$(date -u +%FT%TZ) in $((SECONDS - start))s"
    } >"$STAMP"
    [[ ${KOMMERCE_CP_KEEP_BUILD:-0} == 1 ]] || rm -rf "$BUILD_DIR" "$CP_DIR/gocache"
    say "built $BIN_DIR/crdapiserver ($git_version) and $BIN_DIR/etcd in $((SECONDS - start))s"
}

# ------------------------------------------------------------------ run

pid_alive() { # pidfile binary
    local pid
    [[ -f $1 ]] || return 1
    pid=$(<"$1")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$2"* ]]
}

# Whether the process started with that pidfile still exists, whatever it runs yet: right after
# the start the pid is still the subshell on its way through `setsid nohup` to the binary, so
# start-up waits on this and on the server answering, never on what /proc says the exe is.
pid_running() { # pidfile
    local pid
    [[ -f $1 ]] || return 1
    pid=$(<"$1")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

port_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null; }

apiserver_ready() {
    [[ -f $RUN_DIR/pki/admin.crt && -f $RUN_DIR/serving/apiserver.crt ]] || return 1
    curl -sf --max-time 2 --cacert "$RUN_DIR/serving/apiserver.crt" \
        --cert "$RUN_DIR/pki/admin.crt" --key "$RUN_DIR/pki/admin.key" \
        "https://127.0.0.1:$PORT/readyz" >/dev/null 2>&1
}

running() {
    pid_alive "$RUN_DIR/etcd.pid" "$BIN_DIR/etcd" &&
        pid_alive "$RUN_DIR/apiserver.pid" "$BIN_DIR/crdapiserver" && apiserver_ready
}

# A client CA and an admin certificate in system:masters. X.509 v3 with clientAuth: rustls (the
# operator's TLS stack) refuses v1 certificates, which is what `openssl x509 -req` makes without
# extensions.
make_client_certs() {
    local pki="$RUN_DIR/pki"
    [[ -f $pki/admin.crt && -f $pki/ca.crt ]] && return 0
    have openssl || die "openssl is needed to issue the client certificate"
    mkdir -p "$pki"
    (
        cd "$pki"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=kommerce-control-plane-ca" \
            -keyout ca.key -out ca.crt 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=kommerce-admin" \
            -keyout admin.key -out admin.csr 2>/dev/null
        printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
            "extendedKeyUsage=clientAuth" >admin.ext
        openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile admin.ext -out admin.crt 2>/dev/null
    ) || die "issuing the client certificate with openssl failed"
}

write_kubeconfig() {
    cat >"$KUBECONFIG_PATH.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kommerce-control-plane
  cluster:
    server: https://127.0.0.1:$PORT
    certificate-authority: $RUN_DIR/serving/apiserver.crt
users:
- name: kommerce-admin
  user:
    client-certificate: $RUN_DIR/pki/admin.crt
    client-key: $RUN_DIR/pki/admin.key
contexts:
- name: kommerce-control-plane
  context:
    cluster: kommerce-control-plane
    user: kommerce-admin
    namespace: default
current-context: kommerce-control-plane
EOF
    mv "$KUBECONFIG_PATH.tmp" "$KUBECONFIG_PATH"
}

stop_pid() { # pidfile binary
    if pid_alive "$1" "$2"; then
        local pid
        pid=$(<"$1")
        kill "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + 10))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$1"
}

down() {
    stop_pid "$RUN_DIR/apiserver.pid" "$BIN_DIR/crdapiserver"
    stop_pid "$RUN_DIR/etcd.pid" "$BIN_DIR/etcd"
    say "stopped"
}

up() {
    build
    if running; then
        write_kubeconfig
        say "already running on https://127.0.0.1:$PORT (etcd pid $(<"$RUN_DIR/etcd.pid"), apiserver pid $(<"$RUN_DIR/apiserver.pid"))"
        say "KUBECONFIG=$KUBECONFIG_PATH"
        return 0
    fi
    # Partly up (one process died, or a rebuild): start both from a clean etcd.
    stop_pid "$RUN_DIR/apiserver.pid" "$BIN_DIR/crdapiserver"
    stop_pid "$RUN_DIR/etcd.pid" "$BIN_DIR/etcd"
    local p
    for p in "$PORT" "$ETCD_PORT" "$ETCD_PEER_PORT"; do
        port_open "$p" && die "port 127.0.0.1:$p is taken by another process; set KOMMERCE_CP_PORT / KOMMERCE_CP_ETCD_PORT"
    done
    mkdir -p "$RUN_DIR"
    rm -rf "$RUN_DIR/etcd"
    make_client_certs

    local start=$SECONDS
    # Test data only: no fsync, and a fresh data dir on every start.
    (
        cd "$RUN_DIR"
        exec setsid nohup "$BIN_DIR/etcd" --name kommerce --data-dir "$RUN_DIR/etcd" \
            --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
            --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
            --initial-cluster "kommerce=http://127.0.0.1:$ETCD_PEER_PORT" \
            --unsafe-no-fsync --log-level warn </dev/null >"$RUN_DIR/etcd.log" 2>&1 9>&-
    ) &
    echo $! >"$RUN_DIR/etcd.pid"
    (
        cd "$RUN_DIR"
        exec setsid nohup "$BIN_DIR/crdapiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
            --bind-address 127.0.0.1 --secure-port "$PORT" --cert-dir "$RUN_DIR/serving" \
            --client-ca-file "$RUN_DIR/pki/ca.crt" </dev/null >"$RUN_DIR/apiserver.log" 2>&1 9>&-
    ) &
    echo $! >"$RUN_DIR/apiserver.pid"

    local deadline=$((SECONDS + 60))
    until apiserver_ready; do
        pid_running "$RUN_DIR/etcd.pid" || { log_tail "$RUN_DIR/etcd.log"; die "etcd exited during startup (log: $RUN_DIR/etcd.log)"; }
        pid_running "$RUN_DIR/apiserver.pid" || { log_tail "$RUN_DIR/apiserver.log"; die "the API server exited during startup (log: $RUN_DIR/apiserver.log)"; }
        ((SECONDS < deadline)) || { log_tail "$RUN_DIR/apiserver.log"; die "the API server is not ready after 60s (log: $RUN_DIR/apiserver.log)"; }
        sleep 0.2
    done
    write_kubeconfig
    say "started on https://127.0.0.1:$PORT in $((SECONDS - start))s (etcd pid $(<"$RUN_DIR/etcd.pid"), apiserver pid $(<"$RUN_DIR/apiserver.pid"); logs in $RUN_DIR)"
    say "KUBECONFIG=$KUBECONFIG_PATH"
}

status() {
    if running; then
        say "running on https://127.0.0.1:$PORT; KUBECONFIG=$KUBECONFIG_PATH"
    else
        say "not running"
        return 1
    fi
}

# One invocation at a time (make test in two shells, a test harness and a human). The servers
# are started with fd 9 closed, so they do not inherit the lock.
locked() {
    mkdir -p "$CP_DIR"
    exec 9>"$CP_DIR/lock"
    flock -w 900 9 || die "another control-plane.sh has held $CP_DIR/lock for 15 minutes"
    "$@"
}

main() {
    case ${1:-up} in
    up | start) locked up ;;
    build) locked build ;;
    down | stop) locked down ;;
    status) status ;;
    kubeconfig) echo "$KUBECONFIG_PATH" ;;
    -h | --help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command '$1' (expected: up, build, status, down, kubeconfig)" ;;
    esac
}

main "$@"; exit $?
