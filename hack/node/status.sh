#!/usr/bin/env bash
# What of the node runs (hack/node.sh status). Exit 1 when it is not up.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/node/lib.sh
source "$here/lib.sh"
up=0
for d in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy kube-router host-forward; do
  if alive "$d"; then printf '  %-24s running (pid %s)\n' "$d" "$(cat "$run/$d.pid")"; else printf '  %-24s stopped\n' "$d"; up=1; fi
done
((up == 0)) || { log "the node is not (fully) up: hack/node.sh up"; exit 1; }
kubectl_node get nodes -o wide
kubectl_node get pods -A -o wide
echo "KUBECONFIG=$NODE_DIR/host.kubeconfig"
