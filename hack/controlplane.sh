#!/usr/bin/env bash
# Runs a real, local Kubernetes control plane: etcd + kube-apiserver on loopback,
# secure serving, bound service-account tokens, RBAC and an admin kubeconfig.
# No kubelet, scheduler or controller-manager: pods are admitted but never run.
#
#   hack/controlplane.sh start            build if needed, start, wait until ready
#   hack/controlplane.sh stop             stop everything, leave no process behind
#   hack/controlplane.sh restart-apiserver   stop and start only the API server (etcd keeps the data)
#   hack/controlplane.sh reset            stop and wipe the data: the next start is an empty cluster
#   hack/controlplane.sh status           is it running? prints the kubeconfig path
#   hack/controlplane.sh bin              prints the directory with etcd, kube-apiserver, kubectl
#
# State (certs, data, logs, kubeconfig) lives in $TENET_STATE_DIR (default .tenet/controlplane).
# TENET_APISERVER_PROFILING=true serves /debug/pprof on the API server (benchmarks profile it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/lib.sh
source "$here/lib.sh"

state=${TENET_STATE_DIR:-$here/../.tenet/controlplane}
mkdir -p "$state"
state=$(cd "$state" && pwd)
pki=$state/pki
kubeconfig=$state/kubeconfig

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

alive() { [[ -f "$state/$1.pid" ]] && kill -0 "$(cat "$state/$1.pid")" 2>/dev/null; }

stop_one() { # stop_one <name>: TERM, wait, then KILL, so no process is left behind
  local name=$1 pid
  [[ -f "$state/$name.pid" ]] || return 0
  pid=$(cat "$state/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$state/$name.pid"
}

make_pki() {
  [[ -f "$pki/admin.crt" ]] && return
  need openssl
  mkdir -p "$pki"
  log "generating certificates in $pki"
  (
    cd "$pki"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -keyout ca.key -out ca.crt -subj "/CN=tenet-local-ca" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n' > apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=tenet-admin" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' > admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile admin.ext -out admin.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ./*.csr ./*.ext ./*.srl
  )
}

write_kubeconfig() {
  local port=$1
  cat > "$kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: tenet-local
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority: $pki/ca.crt
users:
- name: tenet-admin
  user:
    client-certificate: $pki/admin.crt
    client-key: $pki/admin.key
contexts:
- name: tenet-local
  context: {cluster: tenet-local, user: tenet-admin, namespace: default}
current-context: tenet-local
KC
}

start_etcd() {
  alive etcd && return
  local client peer
  client=$(free_port); peer=$(free_port)
  echo "$client" > "$state/etcd.port"
  log "starting etcd on 127.0.0.1:$client"
  "$bin/etcd" --data-dir "$state/etcd-data" --name tenet \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "tenet=http://127.0.0.1:$peer" --unsafe-no-fsync --log-level warn \
    > "$state/etcd.log" 2>&1 &
  echo $! > "$state/etcd.pid"
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$client/health" >/dev/null 2>&1 && return
    alive etcd || die "etcd exited; see $state/etcd.log"
    sleep 0.1
  done
  die "etcd did not become healthy; see $state/etcd.log"
}

start_apiserver() {
  alive apiserver && return
  local port
  # Keep the port across restarts so clients can reconnect to the same address.
  [[ -f "$state/apiserver.port" ]] || free_port > "$state/apiserver.port"
  port=$(cat "$state/apiserver.port")
  write_kubeconfig "$port"
  log "starting kube-apiserver ${TENET_K8S_VERSION} on https://127.0.0.1:$port"
  "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$(cat "$state/etcd.port")" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$port" \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --api-audiences https://kubernetes.default.svc.cluster.local \
    --authorization-mode RBAC --service-cluster-ip-range 10.0.0.0/24 \
    --allow-privileged=true --endpoint-reconciler-type none \
    --enable-priority-and-fairness=false --profiling="${TENET_APISERVER_PROFILING:-false}" \
    > "$state/apiserver.log" 2>&1 &
  echo $! > "$state/apiserver.pid"
  for _ in $(seq 1 600); do
    if curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
      "https://127.0.0.1:$port/readyz" >/dev/null 2>&1; then
      return
    fi
    alive apiserver || die "kube-apiserver exited; see $state/apiserver.log"
    sleep 0.1
  done
  die "kube-apiserver did not become ready in 60s; see $state/apiserver.log"
}

case "${1:-}" in
  start)
    start=$SECONDS
    bin=$(bash "$here/build-controlplane.sh" | tail -n 1)
    make_pki
    start_etcd
    start_apiserver
    log "control plane ready in $((SECONDS - start))s; KUBECONFIG=$kubeconfig"
    echo "$kubeconfig"
    ;;
  stop)
    stop_one apiserver
    stop_one etcd
    log "control plane stopped"
    ;;
  restart-apiserver)
    bin=$(tenet_bin_dir)
    stop_one apiserver
    start_apiserver
    ;;
  stop-apiserver)
    stop_one apiserver
    ;;
  bin)
    tenet_bin_dir
    ;;
  reset)
    # Stop and wipe etcd's data: the next start is an empty cluster (certificates are kept).
    stop_one apiserver
    stop_one etcd
    rm -rf "$state/etcd-data" "$state"/*.port
    ;;
  status)
    if alive etcd && alive apiserver; then echo "$kubeconfig"; else exit 1; fi
    ;;
  *)
    sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
