# Shared settings and helpers for up.sh / down.sh / prove.sh. Source it; do not run it.
# Everything the node does happens inside one network namespace and one mount
# namespace of its own: iptables rules, routes, bridges, pod netns, container mounts
# and kubelet's volume mounts never appear in the host's namespaces.
node_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/lib.sh
source "$node_dir/../lib.sh"
modules_dir=$hack_dir/modules

K8S_VERSION=$TENET_K8S_VERSION
ETCD_VERSION=$TENET_ETCD_VERSION
COREDNS_VERSION=$(awk '/^require github.com\/coredns\/coredns/{print $3}' "$modules_dir/coredns/go.mod")
CONTAINERD2_VERSION=$(awk '/^require github.com\/containerd\/containerd\/v2/{print $3}' "$modules_dir/containerd2/go.mod")
KUBE_ROUTER_VERSION=$(awk '/^require github.com\/cloudnativelabs\/kube-router\/v2/{print $3}' "$modules_dir/kube-router/go.mod")

# Build cache (outside any repo, shared with the control-plane tier) and node state.
CACHE=$TENET_CACHE
NODE_DIR=${TENET_NODE_DIR:-/tmp/tenet-node}
NETNS=${TENET_NETNS:-tenetnode}             # network namespace (ip netns name)
NSDIR=/run/tenet-node                       # holds the mount-namespace handle
MNTNS=$NSDIR/$NETNS.mnt
CGROUP_ROOT=/$NETNS                          # kubelet --cgroup-root; our daemons go in $CGROUP_ROOT/daemons

NODE_NAME=tenet-node
NODE_IP=10.200.0.1                           # lives on node0, a veth inside the namespace
POD_CIDR=10.244.0.0/24
CLUSTER_CIDR=10.244.0.0/16
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SVC_IP=10.96.0.1
DNS_IP=10.96.0.10
API_PORT=6443                                # inside the namespace

bin_k8s=$(tenet_bin_dir)
bin_etcd=$(tenet_etcd_dir)
bin_coredns=$CACHE/bin/coredns-$COREDNS_VERSION
bin_kube_router=$CACHE/bin/kube-router-$KUBE_ROUTER_VERSION
bin_pause=$CACHE/bin/pause-$(sha256sum "$modules_dir/pause/main.go" | cut -c1-12)
images_dir=$CACHE/images
# TENET_CONTAINERD=2: containerd v2 built from Go modules instead of Debian's 1.6 (needed
# once kubelet drops containerd 1.x, i.e. Kubernetes 1.36).
if [[ ${TENET_CONTAINERD:-1} == 2 ]]; then
  containerd_bin=$CACHE/bin/containerd-$CONTAINERD2_VERSION
else
  containerd_bin=/usr/bin
fi

run=$NODE_DIR/run          # sockets, pid files
logs=$NODE_DIR/logs
pki=$NODE_DIR/pki
CONTAINERD_SOCK=$run/containerd.sock

log() { printf '[node %s +%ss] %s\n' "$(date +%T)" "$SECONDS" "$*" >&2; }

# Run a command inside the node's network and mount namespaces.
in_node() { nsenter --mount="$MNTNS" --net="/run/netns/$NETNS" --wd="$PWD" -- "$@"; }
kubectl_node() { in_node "$bin_k8s/kubectl" --kubeconfig "$NODE_DIR/kubeconfig" "$@"; }
ctr_node() { in_node "$containerd_bin/ctr" --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }

# A process that exited but is not reaped yet (PID 1 on this machine reaps orphans late) is a
# zombie: kill -0 still succeeds on it, so look at its state too.
running() { local st; st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) && [[ -n $st && $st != Z && $st != X ]]; }
alive() { [[ -f "$run/$1.pid" ]] && running "$(cat "$run/$1.pid")"; }

stop_all() { # stop_all NAME...: TERM them all, wait up to $STOP_GRACE (default 10) s, then KILL
  local name pids=() pid
  for name; do
    [[ -f "$run/$name.pid" ]] || continue
    pid=$(cat "$run/$name.pid")
    running "$pid" && kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    rm -f "$run/$name.pid"
  done
  for _ in $(seq 1 $((${STOP_GRACE:-10} * 10))); do
    local left=()
    for pid in "${pids[@]}"; do running "$pid" && left+=("$pid"); done
    ((${#left[@]})) || return 0
    pids=("${left[@]}")
    sleep 0.1
  done
  kill -KILL "${pids[@]}" 2>/dev/null || true
}
stop_one() { stop_all "$1"; }

cgroup_v2() { [[ -f /sys/fs/cgroup/cgroup.controllers ]]; }

cgroup_dirs() { # cgroup_dirs PATH: the directories of cgroup PATH in every hierarchy kubelet uses
  local d
  if cgroup_v2; then echo "/sys/fs/cgroup$1"; return; fi
  for d in /sys/fs/cgroup/*/; do
    d=${d%/}
    [[ -f "$d/cgroup.procs" && "${d##*/}" != unified ]] && echo "$d$1"
  done
  return 0
}

cgroup_pids() { # cgroup_pids PATH: every pid in cgroup PATH and below (one hierarchy is enough)
  local top
  if cgroup_v2; then top=/sys/fs/cgroup$1; else top=/sys/fs/cgroup/pids$1; fi
  [[ -d "$top" ]] || return 0
  find "$top" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un
}
