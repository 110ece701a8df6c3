#!/usr/bin/env bash
# Tenet on the real node (hack/node.sh images | install | uninstall).
#   images     build Tenet's images (hack/image/build.sh, cached) and import them into the node's
#              containerd, plus the demo app image under the names examples/ uses
#   install    images, then `kubectl apply -k manifests/overlays/local`; restarts the operator
#              when its image changed; waits until both replicas are Ready
#   uninstall  `kubectl delete -k manifests/overlays/local`; waits until the webhook
#              configurations are garbage-collected, so the cluster admits pods again
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=hack/node/lib.sh
source "$here/lib.sh"
findmnt -rn -M "/run/netns/$NETNS" >/dev/null 2>&1 && alive containerd || die "the node is not up: hack/node.sh up"
overlay=$root/manifests/overlays/local

import_tenet_images() {
  use_node
  bash "$root/hack/image/build.sh" "$images_dir" >/dev/null
  local changed=1
  if [[ "$(cat "$run/image-tenet" 2>/dev/null)" == "$(cat "$images_dir/tenet.inputs")" ]]; then changed=0; fi
  if ((changed)); then
    log "importing tenet.local/tenet-{operator,enforcer,capture}:dev"
    ctr_node images import "$images_dir/tenet-operator.tar" >/dev/null
    ctr_node images import "$images_dir/tenet-enforcer.tar" >/dev/null
    ctr_node images import "$images_dir/tenet-capture.tar" >/dev/null
    cp "$images_dir/tenet.inputs" "$run/image-tenet"
  fi
  # The examples' workloads run the demo server (node-tools) under their own image names.
  local ref
  # The e2e tier's workloads use images of their own, so its scan data never touches the demo's.
  for ref in ghcr.io/acme/orders:1.4.2 ghcr.io/acme/frontend:2.0.1 ghcr.io/acme/e2e-app:1.0 ghcr.io/acme/e2e-victim:1.0; do
    ctr_node images tag --force tenet.local/node-tools:v1 "$ref" >/dev/null
  done
  return $((1 - changed))
}

case "${1:-}" in
  images)
    import_tenet_images || true
    ;;
  install)
    t=$SECONDS
    import_tenet_images || true
    log "installing Tenet: kubectl apply -k manifests/overlays/local"
    kubectl_node apply -k "$overlay" >/dev/null
    kubectl_node wait --for=condition=Established --timeout=60s crd/serviceidentities.tenet.dev crd/apipolicies.tenet.dev crd/runtimerules.tenet.dev >/dev/null
    # The tag stays "dev" across builds: the build's digest in the pod template rolls the
    # operator out whenever the image changed (and only then).
    kubectl_node -n tenet-system patch deployment tenet-operator --type merge \
      -p "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"tenet.dev/image-build\":\"$(cat "$images_dir/tenet.inputs")\"}}}}}" >/dev/null
    kubectl_node -n tenet-system rollout status deployment/tenet-operator --timeout=180s >/dev/null ||
      { kubectl_node -n tenet-system get pods -o wide; kubectl_node -n tenet-system logs -l app.kubernetes.io/name=tenet-operator --tail=30 --prefix || true; die "the operator did not become ready"; }
    # Both replicas serve admission; the leader also writes the webhook configurations.
    for _ in $(seq 1 150); do
      kubectl_node get validatingwebhookconfiguration tenet >/dev/null 2>&1 && break
      sleep 0.2
    done
    kubectl_node get validatingwebhookconfiguration tenet >/dev/null 2>&1 || die "the operator did not register its webhooks"
    log "Tenet installed in $((SECONDS - t))s: $(kubectl_node -n tenet-system get deployment tenet-operator -o jsonpath='{.status.readyReplicas}') replicas ready"
    ;;
  uninstall)
    t=$SECONDS
    log "uninstalling Tenet: kubectl delete -k manifests/overlays/local"
    kubectl_node delete -k "$overlay" --ignore-not-found --wait=true --timeout=120s >/dev/null
    # The webhook configurations are owned by Tenet's ClusterRole: the garbage collector removes them.
    for _ in $(seq 1 300); do
      if ! kubectl_node get mutatingwebhookconfiguration tenet >/dev/null 2>&1 && ! kubectl_node get validatingwebhookconfiguration tenet >/dev/null 2>&1; then
        log "Tenet uninstalled in $((SECONDS - t))s; its webhook configurations are gone"
        exit 0
      fi
      sleep 0.2
    done
    die "the webhook configurations 'tenet' are still there: delete them with kubectl delete mutatingwebhookconfiguration,validatingwebhookconfiguration tenet"
    ;;
  *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
