#!/usr/bin/env bash
# The test control plane: a whole Kubernetes control plane on loopback — etcd, kube-apiserver,
# kube-controller-manager and kube-scheduler — with simulated nodes (kwok) instead of kubelets,
# plus the kubectl and helm of the same build. Idempotent.
#
#   scripts/control-plane.sh [up]     build once (cached), start if not running, print KUBECONFIG
#   scripts/control-plane.sh heal     the same, and start afresh when it runs but a probe pod no
#                                     longer becomes Ready (make test, before any test uses it;
#                                     tests call `up`, which never restarts a running one)
#   scripts/control-plane.sh build    only build (or confirm the cached build)
#   scripts/control-plane.sh status   is it running? (exit 1 if not)
#   scripts/control-plane.sh down     stop the processes this script started
#   scripts/control-plane.sh kubeconfig   print the kubeconfig path
#
# Everything is built from Go modules with the machine's `go` (nothing prebuilt is downloaded):
# the modules in operator/control-plane/{k8s,etcd,kwok,helm} pin Kubernetes (k8s.io/kubernetes,
# its staging modules replaced by the published releases of the same version), etcd, kwok and
# Helm, with their go.sum. The binaries are cached in $KOMMERCE_STATE_DIR/control-plane/bin and
# reused until those files change; the first build takes about 20 minutes on 2 cores.
#
# What it serves: the real API (RBAC and Node authorization, service accounts signed with the
# cluster's key, admission, garbage collection, Deployments, ReplicaSets, HPAs, PDBs, Ingress,
# Leases, Events, CRDs). Pods are scheduled onto kwok's simulated nodes, which report them
# Running and Ready without running any container. Client certificates are X.509 v3 (rustls
# refuses v1); the admin one, in system:masters, is in the kubeconfig.
#
# Environment:
#   KOMMERCE_STATE_DIR       state dir (default: $HOME/.cache/kommerce)
#   KOMMERCE_CP_PORT         API server port on 127.0.0.1 (default: 16443)
#   KOMMERCE_CP_ETCD_PORT    etcd client port on 127.0.0.1 (default: 12379; peer port +1)
#   KOMMERCE_CP_NODES        simulated nodes (default: 2)
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC_DIR="$REPO_DIR/operator/control-plane"

STATE_DIR="${KOMMERCE_STATE_DIR:-$HOME/.cache/kommerce}"
CP_DIR="$STATE_DIR/control-plane"
BIN_DIR="$CP_DIR/bin"
RUN_DIR="$CP_DIR/run"
GO_DIR="$CP_DIR/go"
KUBECONFIG_PATH="$CP_DIR/kubeconfig"
BUILD_LOG="$CP_DIR/build.log"
STAMP="$BIN_DIR/build.stamp"

PORT="${KOMMERCE_CP_PORT:-16443}"
ETCD_PORT="${KOMMERCE_CP_ETCD_PORT:-12379}"
ETCD_PEER_PORT=$((ETCD_PORT + 1))
KCM_PORT=$((PORT + 1))
SCHED_PORT=$((PORT + 2))
KWOK_PORT=$((PORT + 3))
NODES="${KOMMERCE_CP_NODES:-2}"
SERVICE_CIDR=10.96.0.0/16

# What each module builds: "module-dir package binary-name".
BUILDS=(
    "k8s k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver"
    "k8s k8s.io/kubernetes/cmd/kube-controller-manager kube-controller-manager"
    "k8s k8s.io/kubernetes/cmd/kube-scheduler kube-scheduler"
    "k8s k8s.io/kubernetes/cmd/kubectl kubectl"
    "etcd go.etcd.io/etcd/server/v3 etcd"
    "kwok sigs.k8s.io/kwok/cmd/kwok kwok"
    "helm helm.sh/helm/v4/cmd/helm helm"
)
# The processes, in start order (stopped in reverse).
PROCESSES=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

say() { printf 'control-plane: %s\n' "$*"; }
die() {
    printf 'control-plane: ERROR: %s\n' "$*" >&2
    exit 1
}
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ------------------------------------------------------------------ build

# The version a module pins, from its go.mod (`require MODULE vX.Y.Z`).
pinned() {
    awk -v m="$2" '$1 == "require" { $1 = "" ; $0 = $0 } $1 == m && $2 ~ /^v/ { print $2; exit }' "$SRC_DIR/$1/go.mod"
}

sources_hash() {
    (
        cd "$SRC_DIR"
        cat ./*/go.mod ./*/go.sum ./*/tools.go
        printf '%s\n' "${BUILDS[@]}"
    ) | sha256sum | cut -c1-16
}

cached_build_ok() {
    [[ -f $STAMP ]] && grep -qx "sources=$(sources_hash)" "$STAMP" || return 1
    local b name
    for b in "${BUILDS[@]}"; do
        name=${b##* }
        [[ -x $BIN_DIR/$name ]] || return 1
    done
    [[ -f $BIN_DIR/kwok-stages.yaml ]]
}

build() {
    if cached_build_ok; then
        say "using the cached build in $BIN_DIR ($(grep '^kubernetes=' "$STAMP" | cut -d= -f2))"
        return 0
    fi
    have go || die "go is needed to build the control plane (apt-get install golang-go, Go >= 1.26)"
    local k8s_version start=$SECONDS
    k8s_version=$(pinned k8s k8s.io/kubernetes)
    [[ -n $k8s_version ]] || die "operator/control-plane/k8s/go.mod pins no k8s.io/kubernetes version"
    local minor=${k8s_version#v1.}
    minor=${minor%%.*}
    mkdir -p "$BIN_DIR" "$GO_DIR"
    rm -rf "$BIN_DIR.new"
    mkdir -p "$BIN_DIR.new"
    : >"$BUILD_LOG"
    say "building Kubernetes $k8s_version, etcd, kwok and helm from Go modules (about 20 minutes the first time on 2 cores; log: $BUILD_LOG)"
    # One `go build` per module: the four Kubernetes programs compile their shared packages
    # once, in parallel.
    local dir d b pkg name ldflags
    for dir in k8s etcd kwok helm; do
        local pkgs=() names=()
        for b in "${BUILDS[@]}"; do
            read -r d pkg name <<<"$b"
            [[ $d == "$dir" ]] || continue
            pkgs+=("$pkg")
            names+=("$name")
        done
        ldflags="-s -w"
        if [[ $dir == k8s ]]; then
            # What `kubectl version` and the API server's /version report (a module build
            # otherwise says v0.0.0-master).
            ldflags+=" -X k8s.io/component-base/version.gitVersion=$k8s_version"
            ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
            ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$k8s_version"
        elif [[ $dir == helm ]]; then
            ldflags+=" -X helm.sh/helm/v4/internal/version.version=$(pinned helm helm.sh/helm/v4)"
        fi
        # Several packages go to the directory under their own names; one to its binary's name
        # (etcd's main package is the module root, go.etcd.io/etcd/server/v3).
        local out="$BIN_DIR.new/${names[0]}"
        ((${#pkgs[@]} > 1)) && out="$BIN_DIR.new/"
        local t0=$SECONDS
        if ! (cd "$SRC_DIR/$dir" && env GOTOOLCHAIN=local GOFLAGS=-mod=readonly CGO_ENABLED=0 \
            GOMODCACHE="$GO_DIR/mod" GOCACHE="$GO_DIR/cache" \
            go build -trimpath -ldflags "$ldflags" -o "$out" "${pkgs[@]}") >>"$BUILD_LOG" 2>&1; then
            log_tail "$BUILD_LOG" 40
            die "building ${names[*]} failed (log: $BUILD_LOG)"
        fi
        for name in "${names[@]}"; do
            [[ -x $BIN_DIR.new/$name ]] || die "go build made no $name (log: $BUILD_LOG)"
        done
        echo "built ${names[*]} in $((SECONDS - t0))s" >>"$BUILD_LOG"
        say "built ${names[*]} in $((SECONDS - t0))s"
    done
    # kwok has no stages built in: the fast node and pod lifecycles (node ready with a lease
    # heartbeat; pods ready, completed, deleted) from the kwok module's own stage definitions.
    local kwok_dir stages=()
    kwok_dir=$(cd "$SRC_DIR/kwok" && env GOTOOLCHAIN=local GOFLAGS=-mod=readonly GOMODCACHE="$GO_DIR/mod" \
        go list -m -f '{{.Dir}}' sigs.k8s.io/kwok) || die "cannot find the kwok module's files"
    stages=("$kwok_dir"/kustomize/stage/node/fast/node-initialize.yaml
        "$kwok_dir"/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
        "$kwok_dir"/kustomize/stage/pod/fast/pod-{ready,complete,delete}.yaml)
    local f
    for f in "${stages[@]}"; do
        [[ -f $f ]] || die "kwok stage $f is missing (another kwok version? see operator/control-plane/kwok)"
        cat "$f"
        echo "---"
    done >"$BIN_DIR.new/kwok-stages.yaml"
    {
        echo "sources=$(sources_hash)"
        echo "kubernetes=$k8s_version"
        echo "etcd=$(pinned etcd go.etcd.io/etcd/server/v3)"
        echo "kwok=$(pinned kwok sigs.k8s.io/kwok)"
        echo "helm=$(pinned helm helm.sh/helm/v4)"
        echo "go=$(go env GOVERSION)"
        echo "built=$(date -u +%FT%TZ) in $((SECONDS - start))s"
    } >"$BIN_DIR.new/build.stamp"
    rm -rf "$BIN_DIR.old"
    mv -T "$BIN_DIR" "$BIN_DIR.old"
    mv -T "$BIN_DIR.new" "$BIN_DIR"
    rm -rf "$BIN_DIR.old"
    say "built the control plane in $((SECONDS - start))s ($BIN_DIR)"
}

# ------------------------------------------------------------------ pki

# issue NAME SUBJECT EXTENSIONS...: a key and an X.509 v3 certificate signed by the CA.
issue() {
    local name=$1 subject=$2
    shift 2
    openssl req -newkey rsa:2048 -nodes -subj "$subject" -keyout "$name.key" -out "$name.csr" 2>/dev/null
    printf '%s\n' "$@" >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile "$name.ext" -out "$name.crt" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
}

make_pki() {
    local pki="$RUN_DIR/pki"
    [[ -f $pki/done ]] && return 0
    have openssl || die "openssl is needed to issue the cluster's certificates"
    rm -rf "$pki"
    mkdir -p "$pki"
    (
        cd "$pki"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=kommerce-control-plane-ca" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
            -keyout ca.key -out ca.crt 2>/dev/null
        local client=("basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment"
            "extendedKeyUsage=clientAuth" "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid")
        issue apiserver "/CN=kube-apiserver" "basicConstraints=critical,CA:FALSE" \
            "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
            "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid" \
            "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
        issue admin "/O=system:masters/CN=kommerce-admin" "${client[@]}"
        issue kube-controller-manager "/CN=system:kube-controller-manager" "${client[@]}"
        issue kube-scheduler "/CN=system:kube-scheduler" "${client[@]}"
        issue kwok "/O=system:masters/CN=kwok" "${client[@]}"
        # The key service-account tokens are signed with.
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key 2>/dev/null
        openssl pkey -in sa.key -pubout -out sa.pub 2>/dev/null
        chmod 600 ./*.key
        touch done
    ) || die "issuing the cluster's certificates with openssl failed"
}

# write_kubeconfig FILE USER: a kubeconfig for USER's certificate.
write_kubeconfig() {
    cat >"$1.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kommerce-control-plane
  cluster:
    server: https://127.0.0.1:$PORT
    certificate-authority: $RUN_DIR/pki/ca.crt
users:
- name: $2
  user:
    client-certificate: $RUN_DIR/pki/$2.crt
    client-key: $RUN_DIR/pki/$2.key
contexts:
- name: kommerce-control-plane
  context:
    cluster: kommerce-control-plane
    user: $2
    namespace: default
current-context: kommerce-control-plane
EOF
    mv "$1.tmp" "$1"
}

# ------------------------------------------------------------------ run

# Whether the process started with that pidfile still exists, whatever it runs yet: right after
# the start the pid is still the subshell on its way through `setsid nohup` to the binary, so
# start-up waits on this and on the server answering, never on what /proc says the exe is.
pid_running() { # name
    local pid
    [[ -f $RUN_DIR/$1.pid ]] || return 1
    pid=$(<"$RUN_DIR/$1.pid")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

# The process of that pidfile runs one of this script's binaries (a recycled pid is never taken
# for, or killed as, ours; a binary replaced by a rebuild still counts).
pid_is() { # name
    pid_running "$1" && [[ $(readlink "/proc/$(<"$RUN_DIR/$1.pid")/exe" 2>/dev/null) == "$CP_DIR/bin"* ]]
}

kubectl_() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH" --request-timeout 5s "$@"; }

apiserver_ready() { kubectl_ get --raw /readyz >/dev/null 2>&1; }

healthz() { # port
    curl -sfk --max-time 2 "https://127.0.0.1:$1/healthz" >/dev/null 2>&1
}

nodes_ready() {
    local ready
    ready=$(kubectl_ get nodes -l type=kwok \
        -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null |
        grep -c '^True$' || true)
    ((ready >= NODES))
}

# A throwaway pod becomes Ready on a simulated node: what every operator test relies on. A
# control plane up for a long time has been seen answering but no longer making pods Ready.
pods_become_ready() {
    local name="probe-$RANDOM$RANDOM" deadline=$((SECONDS + 30)) ok=1 created=0
    kubectl_ get namespace kommerce-cp-probe >/dev/null 2>&1 ||
        kubectl_ create namespace kommerce-cp-probe >/dev/null 2>&1 || return 1
    while ((SECONDS < deadline)); do
        # A fresh namespace refuses pods until its default ServiceAccount exists: try again.
        if ((created == 0)); then
            kubectl_ -n kommerce-cp-probe run "$name" --image=probe --restart=Never \
                --overrides='{"apiVersion":"v1","spec":{"nodeSelector":{"type":"kwok"}}}' \
                >/dev/null 2>&1 && created=1
        elif [[ $(kubectl_ -n kommerce-cp-probe get pod "$name" \
            -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]; then
            ok=0
            break
        fi
        sleep 0.3
    done
    ((created == 0)) || kubectl_ -n kommerce-cp-probe delete pod "$name" --wait=false >/dev/null 2>&1 || true
    return "$ok"
}

running() {
    local p
    for p in "${PROCESSES[@]}"; do
        pid_is "$p" || return 1
    done
    apiserver_ready
}

# start NAME ARGS...: runs the binary detached, in its own session, logging to NAME.log.
start() {
    local name=$1
    shift
    (
        cd "$RUN_DIR"
        exec setsid nohup "$BIN_DIR/$name" "$@" </dev/null >"$RUN_DIR/$name.log" 2>&1 9>&-
    ) &
    echo $! >"$RUN_DIR/$name.pid"
}

# wait_until SECONDS WHAT CHECK...: polls CHECK; fails at once if a started process died.
wait_until() {
    local secs=$1 what=$2
    shift 2
    local deadline=$((SECONDS + secs)) p
    until "$@"; do
        for p in "${PROCESSES[@]}"; do
            if [[ -f $RUN_DIR/$p.pid ]] && ! pid_running "$p"; then
                log_tail "$RUN_DIR/$p.log" 25
                die "$p exited during start-up (log: $RUN_DIR/$p.log)"
            fi
        done
        ((SECONDS < deadline)) || die "$what not after ${secs}s (logs in $RUN_DIR)"
        sleep 0.3
    done
}

stop_process() { # name
    if pid_is "$1"; then
        local pid
        pid=$(<"$RUN_DIR/$1.pid")
        kill "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + 10))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$RUN_DIR/$1.pid"
}

stop_all() {
    local i
    for ((i = ${#PROCESSES[@]} - 1; i >= 0; i--)); do
        stop_process "${PROCESSES[i]}"
    done
    # The CRD-only API server of earlier versions of this script.
    if [[ -f $RUN_DIR/apiserver.pid ]]; then
        kill "$(<"$RUN_DIR/apiserver.pid")" 2>/dev/null || true
        rm -f "$RUN_DIR/apiserver.pid"
    fi
}

down() {
    [[ -d $RUN_DIR ]] && stop_all
    say "stopped"
}

add_nodes() {
    local i
    for ((i = 0; i < NODES; i++)); do
        kubectl_ apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: kwok-node-$i
spec: {}
status:
  allocatable: {cpu: "16", memory: 64Gi, pods: "110"}
  capacity: {cpu: "16", memory: 64Gi, pods: "110"}
EOF
    done
}

up() {
    build
    if running && { [[ ${1:-} != heal ]] || { nodes_ready && pods_become_ready; }; }; then
        say "already running on https://127.0.0.1:$PORT (logs in $RUN_DIR)"
        say "KUBECONFIG=$KUBECONFIG_PATH"
        return 0
    fi
    running && say "running, but a pod does not become Ready on the simulated nodes: starting afresh"
    # Partly up (a process died, a rebuild, an older layout): start everything from a clean etcd.
    mkdir -p "$RUN_DIR"
    stop_all
    local p
    for p in "$PORT" "$ETCD_PORT" "$ETCD_PEER_PORT" "$KCM_PORT" "$SCHED_PORT" "$KWOK_PORT"; do
        port_open 127.0.0.1 "$p" && die "port 127.0.0.1:$p is taken by another process; set KOMMERCE_CP_PORT / KOMMERCE_CP_ETCD_PORT"
    done
    rm -rf "$RUN_DIR/etcd" "$RUN_DIR/serving"
    make_pki
    local pki="$RUN_DIR/pki" start=$SECONDS
    write_kubeconfig "$KUBECONFIG_PATH" admin
    write_kubeconfig "$RUN_DIR/kube-controller-manager.kubeconfig" kube-controller-manager
    write_kubeconfig "$RUN_DIR/kube-scheduler.kubeconfig" kube-scheduler
    write_kubeconfig "$RUN_DIR/kwok.kubeconfig" kwok

    # Test data only: no fsync, and a fresh data dir on every start; loopback only.
    start etcd --name kommerce --data-dir "$RUN_DIR/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "kommerce=http://127.0.0.1:$ETCD_PEER_PORT" \
        --unsafe-no-fsync --log-level warn
    start kube-apiserver --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
        --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$PORT" \
        --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
        --client-ca-file "$pki/ca.crt" --authorization-mode Node,RBAC \
        --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --service-cluster-ip-range "$SERVICE_CIDR" --cert-dir "$RUN_DIR/serving" \
        --endpoint-reconciler-type none
    wait_until 90 "the API server ready" apiserver_ready

    local kcm="$RUN_DIR/kube-controller-manager.kubeconfig" sched="$RUN_DIR/kube-scheduler.kubeconfig"
    start kube-controller-manager --kubeconfig "$kcm" \
        --authentication-kubeconfig "$kcm" --authorization-kubeconfig "$kcm" \
        --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --cert-dir "$RUN_DIR/kcm-serving" \
        --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
        --use-service-account-credentials --cluster-signing-cert-file "$pki/ca.crt" \
        --cluster-signing-key-file "$pki/ca.key" --service-cluster-ip-range "$SERVICE_CIDR" \
        --leader-elect=false
    start kube-scheduler --kubeconfig "$sched" \
        --authentication-kubeconfig "$sched" --authorization-kubeconfig "$sched" \
        --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" --cert-dir "$RUN_DIR/scheduler-serving" \
        --leader-elect=false
    start kwok --kubeconfig "$RUN_DIR/kwok.kubeconfig" --config "$BIN_DIR/kwok-stages.yaml" \
        --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
        --node-ip 127.0.0.1 --node-name kwok-controller --node-port "$KWOK_PORT" \
        --server-address "127.0.0.1:$KWOK_PORT" --node-lease-duration-seconds 40
    wait_until 60 "the controller manager healthy" healthz "$KCM_PORT"
    wait_until 60 "the scheduler healthy" healthz "$SCHED_PORT"
    add_nodes
    wait_until 60 "$NODES simulated nodes Ready" nodes_ready
    pods_become_ready || die "the simulated nodes do not make a pod Ready (logs in $RUN_DIR)"
    say "started on https://127.0.0.1:$PORT in $((SECONDS - start))s with $NODES simulated nodes (logs in $RUN_DIR)"
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
    flock -w 1800 9 || die "another control-plane.sh has held $CP_DIR/lock for 30 minutes"
    "$@"
}

main() {
    case ${1:-up} in
    up | start) locked up ;;
    heal) locked up heal ;;
    build) locked build ;;
    down | stop) locked down ;;
    status) status ;;
    kubeconfig) echo "$KUBECONFIG_PATH" ;;
    -h | --help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command '$1' (expected: up, heal, build, status, down, kubeconfig)" ;;
    esac
}

main "$@"; exit $?
