# Shared helpers for hack/ scripts. Source it; do not run it.
TENET_K8S_VERSION=$(awk '/^require k8s.io\/kubernetes/{print $3}' "$(dirname "${BASH_SOURCE[0]}")/controlplane/apiserver/go.mod")
TENET_ETCD_VERSION=$(awk '/^require go.etcd.io\/etcd\/server\/v3/{print $3}' "$(dirname "${BASH_SOURCE[0]}")/controlplane/etcd/go.mod")

log() { printf '[tenet] %s\n' "$*" >&2; }
die() { printf '[tenet] error: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is required but not on PATH"; }

# Binaries are cached per version so switching versions never mixes builds.
tenet_bin_dir() {
  echo "${TENET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tenet}/bin/k8s-${TENET_K8S_VERSION}-etcd-${TENET_ETCD_VERSION}"
}
