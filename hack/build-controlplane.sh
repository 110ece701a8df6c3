#!/usr/bin/env bash
# Builds etcd, kube-apiserver and kubectl from Go modules (versions pinned in
# hack/modules/*/go.mod) into a cache outside the repo, keyed by version.
# A warm cache makes this a no-op. Prints the bin directory on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/lib.sh
source "$here/lib.sh"

bin=$(tenet_bin_dir)
go_build etcd go.etcd.io/etcd/server/v3 "$(tenet_etcd_dir)/etcd"
go_build k8s k8s.io/kubernetes/cmd/kube-apiserver "$bin/kube-apiserver" "$(k8s_ldflags)"
go_build k8s k8s.io/kubernetes/cmd/kubectl "$bin/kubectl" "$(k8s_ldflags)"
ln -sfn "$(tenet_etcd_dir)/etcd" "$bin/etcd"
echo "$bin"
