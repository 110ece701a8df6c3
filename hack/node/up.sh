#!/usr/bin/env bash
# Starts a real single-node Kubernetes v1.34 on this machine (Debian 12, root, no Docker,
# no systemd, no internet but package registries): etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, containerd + runc, kubelet, kube-proxy (iptables),
# kube-router (NetworkPolicy firewall only), CNI bridge networking and CoreDNS (as a pod).
# See REPORT.md beside this file.
#
# All of it runs inside one network namespace ($NETNS) and one mount namespace made for it,
# so no route, iptables rule, bridge or mount is added to the host. The only things outside:
# /run/netns/$NETNS, $NSDIR, cgroups under $CGROUP_ROOT, and a loopback port on the host
# forwarded to the API server.
#
# Run through hack/node.sh (up, build, down, status, exec, install, ...).
#   up.sh            build what is missing (cached), start what is not running, wait until
#                    the node is Ready and cluster DNS answers; prints the host kubeconfig path
#   up.sh build      only build binaries and images
#   in-node.sh CMD   run CMD in the node's network namespace (API, pod IPs, ClusterIPs, DNS)
#   prove.sh         end-to-end checks;   down.sh [--purge]   stop (and wipe the cluster)
#
# Idempotent: run it again and it only starts what is missing.
# Env: TENET_NODE_DIR (state, default /tmp/tenet-node), TENET_CACHE (build cache root,
# default ~/.cache/tenet), TENET_NETNS (default tenetnode), TENET_NODE_HOST_PORT (host
# loopback port for the API server; default: a free one, kept across restarts; "off" for none),
# TENET_CONTAINERD=2 (containerd v2 built from Go modules instead of Debian's 1.6).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"
t0=$SECONDS

[[ $(id -u) == 0 ]] || die "run as root (namespaces, cgroups, containerd)"
command -v go >/dev/null || die "go is required on PATH"

# ---------------------------------------------------------------- Debian packages
ensure_packages() {
  local want=(containerd runc containernetworking-plugins iptables conntrack ipset socat busybox-static openssl curl)
  local missing=() p
  for p in "${want[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ---------------------------------------------------------------- builds (cached by version)
build_all() {
  local c
  for c in kube-apiserver kubectl kubelet kube-proxy kube-controller-manager kube-scheduler; do
    go_build k8s "k8s.io/kubernetes/cmd/$c" "$bin_k8s/$c" "$(k8s_ldflags)"
  done
  go_build etcd go.etcd.io/etcd/server/v3 "$bin_etcd/etcd"
  ln -sfn "$bin_etcd/etcd" "$bin_k8s/etcd"
  go_build coredns github.com/coredns/coredns "$bin_coredns/coredns"
  go_build kube-router github.com/cloudnativelabs/kube-router/v2/cmd/kube-router "$bin_kube_router/kube-router" \
    "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION"
  go_build pause . "$bin_pause/pause"
  if [[ ${TENET_CONTAINERD:-1} == 2 ]]; then
    for c in containerd containerd-shim-runc-v2 ctr; do
      GOTAGS=no_btrfs go_build containerd2 "github.com/containerd/containerd/v2/cmd/$c" "$containerd_bin/$c" \
        "-X github.com/containerd/containerd/v2/version.Version=$CONTAINERD2_VERSION"
    done
  fi
  mkdir -p "$images_dir" "$CACHE/bin/images-input"
  ln -sf "$bin_pause/pause" "$CACHE/bin/images-input/pause"
  ln -sf "$bin_coredns/coredns" "$CACHE/bin/images-input/coredns"
  COREDNS_TAG=$COREDNS_VERSION bash "$here/images/build-images.sh" "$images_dir" "$CACHE/bin/images-input"
}

# ---------------------------------------------------------------- certificates
make_pki() {
  [[ -f "$pki/done" ]] && return 0
  log "generating certificates in $pki"
  rm -rf "$pki"; mkdir -p "$pki"
  (
    cd "$pki"
    key() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null; }
    sign() { # sign NAME EXTFILE-CONTENT
      printf '%s\n' "$2" > "$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    }
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -keyout ca.key -out ca.crt -subj "/CN=tenet-node-ca" 2>/dev/null
    key apiserver "/CN=kube-apiserver"
    sign apiserver "subjectAltName=IP:127.0.0.1,IP:$NODE_IP,IP:$KUBERNETES_SVC_IP,DNS:localhost,DNS:$NODE_NAME,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth"
    key kubelet-serving "/CN=$NODE_NAME"
    sign kubelet-serving "subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME
extendedKeyUsage=serverAuth"
    local_client() { key "$1" "$2"; sign "$1" "extendedKeyUsage=clientAuth"; }
    local_client admin "/O=system:masters/CN=tenet-admin"
    local_client kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
    local_client apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
    local_client kube-controller-manager "/CN=system:kube-controller-manager"
    local_client kube-scheduler "/CN=system:kube-scheduler"
    local_client kube-proxy "/CN=system:kube-proxy"
    local_client kube-router "/CN=tenet:kube-router"
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ./*.csr ./*.ext ./*.srl
    touch done
  )
}

kubeconfig() { # kubeconfig USER SERVER OUT
  cat > "$3" <<KC
apiVersion: v1
kind: Config
clusters:
- name: tenet-node
  cluster: {server: "$2", certificate-authority: "$pki/ca.crt"}
users:
- name: $1
  user: {client-certificate: "$pki/$1.crt", client-key: "$pki/$1.key"}
contexts:
- name: tenet-node
  context: {cluster: tenet-node, user: $1, namespace: default}
current-context: tenet-node
KC
}

# ---------------------------------------------------------------- namespaces
ensure_namespaces() {
  # /run survives a reboot on this machine: a leftover /run/netns/$NETNS may be a plain file.
  if ! findmnt -rn -M "/run/netns/$NETNS" >/dev/null 2>&1; then
    rm -f "/run/netns/$NETNS"
    ip netns add "$NETNS"
  fi
  mkdir -p "$NSDIR"
  if [[ -f "$NSDIR/$NETNS.dir" && "$(cat "$NSDIR/$NETNS.dir")" != "$NODE_DIR" ]] && findmnt -rn -M "$MNTNS" >/dev/null 2>&1; then
    die "namespace $NETNS is in use by the node in $(cat "$NSDIR/$NETNS.dir"): run down.sh with TENET_NODE_DIR=$(cat "$NSDIR/$NETNS.dir"), or pick another TENET_NETNS"
  fi
  # The mount-namespace handle must sit on a private mount (else the bind mount could propagate).
  if ! findmnt -rn -M "$NSDIR" >/dev/null; then
    mount --bind "$NSDIR" "$NSDIR"
    mount --make-private "$NSDIR"
  fi
  if ! findmnt -rn -M "$MNTNS" >/dev/null; then
    log "creating network namespace $NETNS and its mount namespace"
    touch "$MNTNS"
    echo "$NODE_DIR" > "$NSDIR/$NETNS.dir"
    unshare --mount="$MNTNS" --propagation private true
    mkdir -p /run/containerd /var/lib/cni "$NODE_DIR/cni/lib" "$NODE_DIR/sysctl"
    # Values kubelet insists on (it would write them host-wide otherwise: vm.overcommit_memory,
    # kernel.panic, kernel.panic_on_oops are not per-namespace). Inside the node's mount
    # namespace these /proc/sys files are shadowed by plain files that already hold them.
    local kv
    mkdir -p "$NODE_DIR/sysctl/vm" "$NODE_DIR/sysctl/kernel/keys"
    for kv in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
      kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
      echo "${kv#*=}" > "$NODE_DIR/sysctl/${kv%=*}"
    done
    in_node sh -ec "
      mount --make-rshared /
      # containerd keeps shim sockets and runc state under /run/containerd whatever --state says.
      mount -t tmpfs -o mode=0711 tmpfs /run/containerd
      # libcni's cache dir is fixed at /var/lib/cni.
      mount --bind '$NODE_DIR/cni/lib' /var/lib/cni
      for f in vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes; do
        mount --bind '$NODE_DIR/sysctl/'\$f /proc/sys/\$f
      done
    "
  fi
  in_node sh -ec "
    ip link set lo up
    ip link show node0 >/dev/null 2>&1 || ip link add node0 type veth peer name node0-peer
    ip addr show dev node0 | grep -q ' $NODE_IP/' || ip addr add $NODE_IP/24 dev node0
    ip link set node0 up; ip link set node0-peer up
    ip route show default | grep -q . || ip route add default dev node0
    sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.ipv4.conf.all.route_localnet=1
  "
  # cgroups: kubelet's --cgroup-root and a leaf for the daemons we start.
  local d
  for d in $(cgroup_dirs "$CGROUP_ROOT") $(cgroup_dirs "$CGROUP_ROOT/daemons"); do
    mkdir -p "$d"
    if [[ -f "$d/cpuset.cpus" && -z "$(cat "$d/cpuset.cpus")" ]]; then
      cat "$(dirname "$d")/cpuset.cpus" > "$d/cpuset.cpus"
      cat "$(dirname "$d")/cpuset.mems" > "$d/cpuset.mems"
    fi
  done
  if cgroup_v2; then # untested here: this machine is cgroup v1
    local c; for c in $(cat /sys/fs/cgroup/cgroup.subtree_control); do echo "+$c" > "/sys/fs/cgroup$CGROUP_ROOT/cgroup.subtree_control" 2>/dev/null || true; done
  fi
}

# start NAME CMD...: start a daemon inside the node's namespaces and in $CGROUP_ROOT/daemons,
# so down.sh finds it and everything it forks (containerd shims) by cgroup.
start() {
  local name=$1; shift
  alive "$name" && return 0
  # nsenter, setsid and sh all exec: $! is the daemon's own pid.
  nsenter --mount="$MNTNS" --net="/run/netns/$NETNS" -- setsid sh -c 'for f in $CG; do echo $$ > "$f"; done; exec "$@"' sh "$@" \
    > "$logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$run/$name.pid"
}

wait_for() { # wait_for NAME SECONDS CMD...: poll CMD until it succeeds, die if NAME exits
  local name=$1 deadline=$((SECONDS + $2)); shift 2
  while ((SECONDS < deadline)); do
    "$@" >/dev/null 2>&1 && return 0
    [[ -z "$name" ]] || alive "$name" || die "$name exited; see $logs/$name.log"
    sleep 0.2
  done
  die "timed out waiting for: $*${name:+ (see $logs/$name.log)}"
}

# ---------------------------------------------------------------- control plane
start_etcd() {
  alive etcd && return 0
  log "starting etcd $ETCD_VERSION"
  start etcd "$bin_etcd/etcd" --data-dir "$NODE_DIR/etcd" --name realnode \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster realnode=http://127.0.0.1:2380 --unsafe-no-fsync --log-level warn
  wait_for etcd 30 in_node curl -sf http://127.0.0.1:2379/health
}

start_apiserver() {
  alive kube-apiserver && return 0
  log "starting kube-apiserver $K8S_VERSION on https://$NODE_IP:$API_PORT (inside $NETNS)"
  start kube-apiserver "$bin_k8s/kube-apiserver" \
    --etcd-servers http://127.0.0.1:2379 \
    --bind-address 0.0.0.0 --advertise-address "$NODE_IP" --secure-port "$API_PORT" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --api-audiences https://kubernetes.default.svc.cluster.local \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --service-cluster-ip-range "$SERVICE_CIDR" --allow-privileged=true \
    --enable-priority-and-fairness=false --profiling=false
  wait_for kube-apiserver 90 in_node curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "https://127.0.0.1:$API_PORT/readyz"
}

start_controllers() {
  if ! alive kube-controller-manager; then
    log "starting kube-controller-manager"
    start kube-controller-manager "$bin_k8s/kube-controller-manager" \
      --kubeconfig "$NODE_DIR/kube-controller-manager.kubeconfig" \
      --authentication-kubeconfig "$NODE_DIR/kube-controller-manager.kubeconfig" \
      --authorization-kubeconfig "$NODE_DIR/kube-controller-manager.kubeconfig" \
      --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
      --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
      --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
      --allocate-node-cidrs=true --cluster-cidr "$CLUSTER_CIDR" --node-cidr-mask-size 24 \
      --service-cluster-ip-range "$SERVICE_CIDR" --profiling=false
  fi
  if ! alive kube-scheduler; then
    log "starting kube-scheduler"
    start kube-scheduler "$bin_k8s/kube-scheduler" \
      --kubeconfig "$NODE_DIR/kube-scheduler.kubeconfig" \
      --authentication-kubeconfig "$NODE_DIR/kube-scheduler.kubeconfig" \
      --authorization-kubeconfig "$NODE_DIR/kube-scheduler.kubeconfig" \
      --bind-address 127.0.0.1 --leader-elect=false --profiling=false
  fi
}

# ---------------------------------------------------------------- container runtime
write_containerd_config() {
  mkdir -p "$NODE_DIR/containerd" "$NODE_DIR/cni/net.d" "$NODE_DIR/cni/ipam"
  cat > "$NODE_DIR/containerd/config.toml" <<TOML
version = 2
root = "$NODE_DIR/containerd/root"
state = "$NODE_DIR/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$run/containerd-ttrpc.sock"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  netns_mounts_under_state_dir = true
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  tolerate_missing_hugetlb_controller = true
  # root here lacks CAP_SYS_RESOURCE: no oom_score_adj below containerd's own (the pause
  # container's default -998 makes runc fail with "can't get final child's PID from pipe").
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni/net.d"
    max_conf_num = 1
TOML
  cat > "$NODE_DIR/cni/net.d/10-tenet.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "tenet",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$NODE_DIR/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "${POD_CIDR%.0/24}.1"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
}

start_containerd() {
  alive containerd && return 0
  write_containerd_config
  log "starting containerd $("$containerd_bin/containerd" --version | awk '{print $3}')"
  # containerd finds containerd-shim-runc-v2 on PATH.
  PATH=$containerd_bin:/usr/sbin:/usr/bin:/sbin:/bin start containerd "$containerd_bin/containerd" --config "$NODE_DIR/containerd/config.toml"
  wait_for containerd 30 ctr_node version
}

import_images() {
  local img ref have
  have=$(ctr_node images ls -q)
  for img in pause:registry.k8s.io/pause:3.10 coredns:tenet.local/coredns:$COREDNS_VERSION node-tools:tenet.local/node-tools:v1; do
    ref=${img#*:} img=${img%%:*}
    if grep -qx "$ref" <<<"$have" && [[ "$(cat "$run/image-$img" 2>/dev/null)" == "$(cat "$images_dir/$img.inputs")" ]]; then
      continue
    fi
    log "importing image $ref"
    ctr_node images import "$images_dir/$img.tar" >/dev/null
    cp "$images_dir/$img.inputs" "$run/image-$img"
  done
}

# ---------------------------------------------------------------- node agents
start_kubelet() {
  alive kubelet && return 0
  mkdir -p "$NODE_DIR/kubelet" "$NODE_DIR/pod-logs"
  printf 'nameserver 127.0.0.1\n' > "$NODE_DIR/kubelet/resolv.conf"
  cat > "$NODE_DIR/kubelet/config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
failCgroupV1: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
clusterDNS: [$DNS_IP]
resolvConf: $NODE_DIR/kubelet/resolv.conf
podLogsDir: $NODE_DIR/pod-logs
serializeImagePulls: false
# Images are imported locally and can never be pulled again: never garbage-collect them,
# and never evict pods because the shared host disk fills up.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 50Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
shutdownGracePeriod: 0s
rotateCertificates: false
serverTLSBootstrap: false
maxPods: 110
YAML
  log "starting kubelet $K8S_VERSION"
  kubelet_started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  PATH=/usr/sbin:/usr/bin:/sbin:/bin start kubelet "$bin_k8s/kubelet" \
    --config "$NODE_DIR/kubelet/config.yaml" --kubeconfig "$NODE_DIR/kubelet.kubeconfig" \
    --root-dir "$NODE_DIR/kubelet" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v 1
  wait_for kubelet 90 node_ready
}

node_ready() { # Ready, and reported by this kubelet (a warm start finds last run's status in etcd)
  local s
  s=$(kubectl_node get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}' 2>/dev/null) || return 1
  [[ ${s%% *} == True && ! ${s#* } < ${kubelet_started:-} ]]
}

dns_ready() { # end to end: kube-proxy's ClusterIP rules, the CoreDNS pod, and its view of the API
  in_node busybox nslookup "kubernetes.default.svc.cluster.local" "$DNS_IP" 2>/dev/null | grep -q "$KUBERNETES_SVC_IP"
}

start_kube_proxy() {
  alive kube-proxy && return 0
  cat > "$NODE_DIR/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $NODE_DIR/kube-proxy.kubeconfig}
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $CLUSTER_CIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [primary]
iptables: {syncPeriod: 30s, minSyncPeriod: 0s}
# 0 = leave the kernel's conntrack settings alone (nf_conntrack_max is host-wide).
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
  log "starting kube-proxy (iptables mode)"
  PATH=/usr/sbin:/usr/bin:/sbin:/bin start kube-proxy "$bin_k8s/kube-proxy" --config "$NODE_DIR/kube-proxy.yaml"
  wait_for kube-proxy 30 in_node curl -sf http://127.0.0.1:10256/healthz
}

start_kube_router() {
  alive kube-router && return 0
  log "starting kube-router $KUBE_ROUTER_VERSION (NetworkPolicy firewall only)"
  PATH=/usr/sbin:/usr/bin:/sbin:/bin start kube-router "$bin_kube_router/kube-router" \
    --run-firewall=true --run-router=false --run-service-proxy=false \
    --kubeconfig "$NODE_DIR/kube-router.kubeconfig" --hostname-override "$NODE_NAME" \
    --service-cluster-ip-range "$SERVICE_CIDR" --health-port 20244 --metrics-port 0 --v 1
  wait_for kube-router 30 in_node curl -sf http://127.0.0.1:20244/healthz
}

apply_addons() {
  sed "s/__DNS_IP__/$DNS_IP/; s/__COREDNS_VERSION__/$COREDNS_VERSION/" "$here/manifests/coredns.yaml" |
    kubectl_node apply -f - >/dev/null
}

start_host_forward() {
  [[ ${TENET_NODE_HOST_PORT:-} == off ]] && return 0
  # The API server listens inside the namespace; this bridges a host loopback port to it
  # through a unix socket (unix sockets do not belong to a network namespace).
  if ! alive apiserver-bridge; then
    rm -f "$run/apiserver.sock"
    start apiserver-bridge socat "UNIX-LISTEN:$run/apiserver.sock,fork,mode=600" "TCP:127.0.0.1:$API_PORT"
  fi
  if ! alive host-forward; then
    if [[ ! -f "$run/host-port" ]]; then
      echo "${TENET_NODE_HOST_PORT:-$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')}" > "$run/host-port"
    fi
    local port; port=$(cat "$run/host-port")
    # Host network namespace, but still in the daemons cgroup.
    setsid sh -c 'for f in $CG; do echo $$ > "$f"; done; exec "$@"' sh \
      socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" "UNIX-CONNECT:$run/apiserver.sock" \
      > "$logs/host-forward.log" 2>&1 < /dev/null &
    echo $! > "$run/host-forward.pid"
    kubeconfig admin "https://127.0.0.1:$port" "$NODE_DIR/host.kubeconfig"
  fi
}

# ---------------------------------------------------------------- main
ensure_packages
use_node
build_all
[[ ${1:-} == build ]] && { log "build done in $((SECONDS - t0))s"; exit 0; }
t1=$SECONDS
mkdir -p "$run" "$logs"
make_pki
kubeconfig admin "https://127.0.0.1:$API_PORT" "$NODE_DIR/kubeconfig"
for c in kubelet kube-controller-manager kube-scheduler kube-proxy kube-router; do
  kubeconfig "$c" "https://127.0.0.1:$API_PORT" "$NODE_DIR/$c.kubeconfig"
done
export CG=""
for d in $(cgroup_dirs "$CGROUP_ROOT/daemons"); do CG+="$d/cgroup.procs "; done
ensure_namespaces
start_etcd
start_apiserver
kubectl_node apply -f "$here/manifests/rbac.yaml" >/dev/null
start_controllers
start_containerd
import_images
start_kubelet
start_kube_proxy
start_kube_router
apply_addons
wait_for "" 120 dns_ready
start_host_forward
bash "$here/tenet.sh" images
log "node ready in $((SECONDS - t1))s (total $((SECONDS - t0))s)."
log "inside the node's network namespace: hack/node.sh exec kubectl get pods -A"
[[ -f "$NODE_DIR/host.kubeconfig" ]] && log "from the host: KUBECONFIG=$NODE_DIR/host.kubeconfig (via 127.0.0.1:$(cat "$run/host-port"))"
if [[ -f "$NODE_DIR/host.kubeconfig" ]]; then echo "$NODE_DIR/host.kubeconfig"; else echo "$NODE_DIR/kubeconfig"; fi
