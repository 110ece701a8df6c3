#!/usr/bin/env bash
# For users with Docker: a kind cluster running Tenet's real Deployment from a locally built
# images. Not run in CI (our machines have no container engine); tests and the quick start
# use hack/node.sh (a real node without Docker) instead.
#
#   hack/kind.sh up      create cluster "tenet", build and load the images, apply manifests + examples
#   hack/kind.sh down    delete the cluster
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
source "$here/lib.sh"
cluster=${TENET_KIND_CLUSTER:-tenet}
node_image=${TENET_KIND_NODE_IMAGE:-kindest/node:${TENET_K8S_VERSION}}

case "${1:-}" in
  up)
    need docker; need kind; need kubectl
    kind get clusters | grep -qx "$cluster" || kind create cluster --name "$cluster" --image "$node_image" --wait 120s
    # The enforcer image follows the operator's name and tag (operator/enforcer-image.ts); the
    # base's tag is package.json's version (npm run gen).
    version=$(node -p 'require(process.argv[1]).version' "$root/package.json")
    docker build --target operator -t "tenet-operator:$version" "$root"
    docker build --target enforcer -t "tenet-enforcer:$version" "$root"
    kind load docker-image "tenet-operator:$version" "tenet-enforcer:$version" --name "$cluster"
    kubectl --context "kind-$cluster" apply -k "$root/manifests"
    kubectl --context "kind-$cluster" -n tenet-system rollout status deploy/tenet-operator --timeout=180s
    # The examples' workloads: the demo server under the names examples/ uses.
    printf 'FROM node:24.22.3-bookworm-slim\nCOPY . /app/\n' |
      docker build -t ghcr.io/acme/orders:1.4.2 -t ghcr.io/acme/frontend:2.0.1 -f - "$root/hack/node/images/app"
    kind load docker-image ghcr.io/acme/orders:1.4.2 ghcr.io/acme/frontend:2.0.1 --name "$cluster"
    kubectl --context "kind-$cluster" apply -k "$root/examples"
    sleep 3
    kubectl --context "kind-$cluster" get serviceidentities,apipolicies,runtimerules -A
    ;;
  down)
    need kind
    kind delete cluster --name "$cluster"
    ;;
  *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
