#!/usr/bin/env bash
# Builds etcd, kube-apiserver and kubectl from Go modules (versions pinned in
# hack/controlplane/*/go.mod) into a cache outside the repo, keyed by version.
# A warm cache makes this a no-op. Prints the bin directory on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/lib.sh
source "$here/lib.sh"

need go

bin=$(tenet_bin_dir)
mkdir -p "$bin"

build() { # build <module dir> <package> <output name>
  local dir=$1 pkg=$2 out=$3
  if [[ -x "$bin/$out" ]]; then return; fi
  log "building $out ($pkg) into $bin — cold builds take several minutes on 2 cores"
  local start=$SECONDS
  (cd "$here/controlplane/$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w' -o "$bin/$out.tmp" "$pkg")
  mv "$bin/$out.tmp" "$bin/$out"
  log "built $out in $((SECONDS - start))s"
}

build etcd go.etcd.io/etcd/server/v3 etcd
build apiserver k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver
build apiserver k8s.io/kubernetes/cmd/kubectl kubectl
echo "$bin"
