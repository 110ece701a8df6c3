#!/usr/bin/env bash
# A real single-node Kubernetes on this machine (no Docker, no systemd, no registry): etcd,
# kube-apiserver, controller-manager, scheduler, containerd + runc, kubelet, kube-proxy,
# kube-router (NetworkPolicy), CNI bridge networking and CoreDNS, all inside a network and mount
# namespace of their own. The e2e tier and the quick start run Tenet on it as its real
# Deployment. Details, timings and pitfalls: docs/real-node.md.
#
#   hack/node.sh up           build what is missing (cached by version), start what is not
#                             running, import the images; idempotent; prints the kubeconfig
#   hack/node.sh down         stop it; keep the cluster's state (next up is a warm start)
#   hack/node.sh down --purge stop it and delete the state: the next up is an empty cluster
#   hack/node.sh status       what runs; exit 1 when the node is not up
#   hack/node.sh exec CMD...  run CMD in the node's network namespace (pod IPs, ClusterIPs, DNS)
#   hack/node.sh kubeconfig   the host kubeconfig path (API server via a host loopback port)
#   hack/node.sh images       rebuild Tenet's images (hack/image/build.sh) and import them
#   hack/node.sh install      images, then kubectl apply -k manifests/overlays/local; waits for both replicas
#   hack/node.sh uninstall    kubectl delete -k manifests/overlays/local; waits until the webhooks are gone
#   hack/node.sh prove        checks that real pods, Service DNS and NetworkPolicy work
#   hack/node.sh build        only build the binaries and images
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:-}; shift || true
case "$cmd" in
  up|build) exec bash "$here/node/up.sh" "$cmd" "$@" ;;
  down) exec bash "$here/node/down.sh" "$@" ;;
  status) exec bash "$here/node/status.sh" "$@" ;;
  exec) exec bash "$here/node/in-node.sh" "$@" ;;
  kubeconfig) source "$here/node/lib.sh"; [[ -f $NODE_DIR/host.kubeconfig ]] || die "the node is not up: hack/node.sh up"; echo "$NODE_DIR/host.kubeconfig" ;;
  images|install|uninstall) exec bash "$here/node/tenet.sh" "$cmd" "$@" ;;
  prove) exec bash "$here/node/prove.sh" "$@" ;;
  *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
