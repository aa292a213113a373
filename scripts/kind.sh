#!/usr/bin/env bash
# Kommerce on a local kind cluster (kind-config.yaml):
#
#   scripts/kind.sh up      # make kind-up
#   scripts/kind.sh down    # make kind-down
#   scripts/kind.sh check   # which of the tools it needs are missing
#
# up: checks the tools (kind, docker or podman, kubectl, helm) and says what is missing; creates
# the cluster; builds the images (scripts/images.sh) and loads them with `kind load
# image-archive`; installs ingress-nginx on the ingress-ready node; installs charts/kommerce
# with its in-cluster PostgreSQL, Redis and Kafka; waits until every ShopService is Ready;
# prints the storefront's URL. Idempotent: a second run reuses the cluster and upgrades.
#
# kind itself runs only on a machine with a container engine that can pull kind's node image;
# what CI proves instead (images, chart, install on a real control plane): docs/adr/0023-what-of-the-kind-path-ci-runs.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER=${KOMMERCE_KIND_CLUSTER:-kommerce}
NAMESPACE=${KOMMERCE_KIND_NAMESPACE:-kommerce}
STATE_DIR="${KOMMERCE_STATE_DIR:-$HOME/.cache/kommerce}"
say() { printf 'kind-up: %s\n' "$*"; }
die() {
    printf 'kind-up: ERROR: %s\n' "$*" >&2
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

# The tools, each missing one named with where it comes from.
check() {
    local missing=()
    have kind || missing+=("kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)")
    have docker || have podman || missing+=("docker or podman (Debian: apt-get install podman)")
    have kubectl || missing+=("kubectl (or bash scripts/control-plane.sh up, which builds one)")
    have helm || missing+=("helm 3.14+ or 4 (or bash scripts/control-plane.sh up, which builds one)")
    if ((${#missing[@]})); then
        printf 'kind-up: missing: %s\n' "${missing[@]}" >&2
        return 1
    fi
    say "tools: kind, $(have docker && echo docker || echo podman), kubectl, helm"
}

provider() {
    # kind uses docker unless told otherwise.
    if ! have docker && have podman; then export KIND_EXPERIMENTAL_PROVIDER=podman; fi
}

up() {
    check || die "install what is missing, then run make kind-up again"
    provider
    if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
        say "cluster $CLUSTER exists: reusing it"
    else
        say "creating cluster $CLUSTER (1 control-plane with ingress ports 80/443, 2 workers)"
        kind create cluster --name "$CLUSTER" --config "$ROOT/kind-config.yaml" --wait 120s
    fi
    kubectl config use-context "kind-$CLUSTER" >/dev/null
    say "building the images"
    bash "$ROOT/scripts/images.sh"
    for tar in "$STATE_DIR"/images/*.tar; do
        say "loading $(basename "$tar" .tar)"
        kind load image-archive "$tar" --name "$CLUSTER"
    done
    say "installing ingress-nginx"
    helm upgrade --install ingress-nginx ingress-nginx \
        --repo https://kubernetes.github.io/ingress-nginx \
        --namespace ingress-nginx --create-namespace \
        --set controller.hostPort.enabled=true \
        --set controller.service.type=ClusterIP \
        --set-string controller.nodeSelector.ingress-ready=true \
        --set 'controller.tolerations[0].key=node-role.kubernetes.io/control-plane' \
        --set 'controller.tolerations[0].operator=Exists' \
        --set 'controller.tolerations[0].effect=NoSchedule' \
        --wait --timeout 5m
    say "installing the chart into $NAMESPACE"
    helm upgrade --install kommerce "$ROOT/charts/kommerce" --namespace "$NAMESPACE" \
        --create-namespace --wait --timeout 10m
    kubectl wait --for=condition=Ready shopsvc --all -n "$NAMESPACE" --timeout=5m
    kubectl get shopsvc -n "$NAMESPACE"
    local host
    host=$(helm get values kommerce -n "$NAMESPACE" --all -o json | sed -n 's/.*"host":"\([^"]*\)".*/\1/p')
    say "the shop: http://${host:-shop.localtest.me}/   the API: http://${host:-shop.localtest.me}/api/v1/items"
}

down() {
    have kind || die "kind is not installed: nothing to delete"
    provider
    kind delete cluster --name "$CLUSTER"
}

case ${1:-up} in
up) up ;;
down) down ;;
check) check ;;
*) die "usage: $0 up|down|check" ;;
esac
