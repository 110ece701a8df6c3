#!/usr/bin/env bash
# Tenet in one command: a real local control plane, Tenet's CRDs and RBAC, the operator
# (running as its own ServiceAccount), and the samples in examples/ — then what happened.
#
#   hack/quickstart.sh         start everything and show the result (leaves it running)
#   hack/quickstart.sh stop    stop the operator and the control plane
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
source "$here/lib.sh"
export TENET_STATE_DIR=${TENET_STATE_DIR:-$root/.tenet/quickstart}
mkdir -p "$TENET_STATE_DIR"
oplog=$TENET_STATE_DIR/operator.log
oppid=$TENET_STATE_DIR/operator.pid

stop_operator() {
  if [[ -f "$oppid" ]] && kill -0 "$(cat "$oppid")" 2>/dev/null; then
    kill -TERM "$(cat "$oppid")" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$(cat "$oppid")" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$(cat "$oppid")" 2>/dev/null || true
  fi
  rm -f "$oppid"
}

if [[ "${1:-}" == "stop" ]]; then
  stop_operator
  bash "$here/controlplane.sh" stop
  exit 0
fi

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "1/5 Installing dependencies and the control-plane binaries (first run builds them from Go modules: a few minutes)"
bash "$here/deps.sh"

step "2/5 Starting a local control plane (etcd + kube-apiserver ${TENET_K8S_VERSION})"
stop_operator
bash "$here/controlplane.sh" reset
kubeconfig=$(bash "$here/controlplane.sh" start | tail -n 1)
kubectl() { "$(tenet_bin_dir)/kubectl" --kubeconfig "$kubeconfig" "$@"; }

step "3/5 Installing Tenet (kubectl apply -k manifests/: CRDs, namespace, RBAC, Deployment)"
kubectl apply -k "$root/manifests"
kubectl wait --for=condition=Established --timeout=30s crd/serviceidentities.tenet.dev crd/apipolicies.tenet.dev crd/runtimerules.tenet.dev >/dev/null
echo "(there is no kubelet here, so the Deployment's pods stay Pending; the operator runs as a local process instead, with the same ServiceAccount and RBAC)"

step "4/5 Starting the operator as tenet-system/tenet-operator"
bash "$here/operator-kubeconfig.sh" "$kubeconfig" "$TENET_STATE_DIR/operator.kubeconfig"
secure_port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
(
  cd "$root"
  KUBECONFIG="$TENET_STATE_DIR/operator.kubeconfig" TENET_NAMESPACE=tenet-system POD_NAME=quickstart-operator \
    TENET_HEALTH_HOST=127.0.0.1 TENET_HEALTH_PORT=0 TENET_SECURE_HOST=127.0.0.1 TENET_SECURE_PORT="$secure_port" \
    TENET_WEBHOOK_HOST=127.0.0.1 \
    TENET_LOG_FORMAT=${TENET_LOG_FORMAT:-pretty} \
    nohup node --import tsx operator/main.ts > "$oplog" 2>&1 &
  echo $! > "$oppid"
)
# Ready once it leads and the API server knows where its admission webhooks are.
for _ in $(seq 1 150); do grep -q "webhook configurations applied" "$oplog" 2>/dev/null && break; sleep 0.2; done
grep -q "webhook configurations applied" "$oplog" || { cat "$oplog"; die "the operator did not start; see $oplog"; }

step "5/5 Applying the samples (kubectl apply -k examples/): identities, policies, a RuntimeRule, a Trivy report, two pods"
kubectl apply -k "$root/examples"
sleep 3

step "What Tenet made of them"
kubectl get serviceidentities,apipolicies,runtimerules -n demo
echo
kubectl get serviceidentities,apipolicies,runtimerules -n demo \
  -o custom-columns='KIND:.kind,NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status,REASON:.status.conditions[?(@.type=="Ready")].reason,MESSAGE:.status.conditions[?(@.type=="Ready")].message'

step "Injection: pod demo/orders-7f9c got the enforcer as a native sidecar (namespace label tenet.dev/inject=enabled)"
kubectl get pod orders-7f9c -n demo \
  -o custom-columns='POD:.metadata.name,SIDECAR:.spec.initContainers[0].name,RESTART:.spec.initContainers[0].restartPolicy,APP:.spec.containers[*].name,INJECTED:.metadata.annotations.tenet\.dev/injected'

step "Admission: a Deployment whose image has 2 critical vulnerabilities (RuntimeRule demo/baseline allows 0)"
echo "\$ kubectl apply -f examples/rejected/deployment-billing.yaml"
# The scan report reaches the webhook through an informer: give it a moment on a cold start.
for attempt in 1 2 3 4 5; do
  if out=$(kubectl apply -f "$root/examples/rejected/deployment-billing.yaml" 2>&1); then
    kubectl delete -f "$root/examples/rejected/deployment-billing.yaml" --wait=false >/dev/null 2>&1 || true
    [[ $attempt -lt 5 ]] && { sleep 1; continue; }
    echo "$out"; die "the vulnerable Deployment was admitted; see $oplog"
  fi
  echo "$out" | fold -s -w 120
  break
done

step "A workload certificate: pod demo/orders-7f9c asks Tenet's CA, as its enforcer would"
(cd "$root" && KUBECONFIG="$kubeconfig" node --import tsx hack/request-cert.ts --namespace demo --pod orders-7f9c \
  --endpoint "https://127.0.0.1:$secure_port" --out "$TENET_STATE_DIR/orders.crt")
(cd "$root" && node --import tsx cli/tenet.ts inspect cert "$TENET_STATE_DIR/orders.crt")

step "The enforcer: frontend calls orders through two real enforcers (mTLS both ways, APIPolicy demo/orders, audit)"
(cd "$root" && KUBECONFIG="$kubeconfig" node --import tsx hack/demo-enforcer.ts --endpoint "https://127.0.0.1:$secure_port" --dir "$TENET_STATE_DIR")

step "Rescan: new scan data says orders' image has a critical vulnerability (kubectl apply -f examples/new-scan/)"
kubectl apply -f "$root/examples/new-scan/trivy-report-orders.yaml"
for _ in $(seq 1 50); do
  [[ "$(kubectl get pod orders-7f9c -n demo -o jsonpath='{.metadata.labels.tenet\.dev/quarantined}')" == "true" ]] && break
  sleep 0.2
done
kubectl get pods -n demo -L tenet.dev/posture,tenet.dev/quarantined
echo
kubectl get networkpolicy tenet-quarantine -n demo -o custom-columns='NETWORKPOLICY:.metadata.name,SELECTS:.spec.podSelector.matchLabels,TYPES:.spec.policyTypes'
echo
echo "revocation list (serials of the certificates orders-7f9c was issued):"
kubectl get configmap tenet-revocations -n tenet-system -o jsonpath='{.data.revocations\.json}'; echo
echo
echo "and the CA now refuses it:"
(cd "$root" && KUBECONFIG="$kubeconfig" node --import tsx hack/request-cert.ts --namespace demo --pod orders-7f9c \
  --endpoint "https://127.0.0.1:$secure_port" --out "$TENET_STATE_DIR/orders-again.crt" 2>&1 | fold -s -w 120) || true

step "Events"
kubectl get events -n demo --sort-by=.lastTimestamp -o custom-columns='TYPE:.type,REASON:.reason,OBJECT:.involvedObject.kind,NAME:.involvedObject.name,MESSAGE:.message'

step "Operator log (last lines of $oplog)"
tail -n 25 "$oplog"

cat <<MSG

Tenet is running. Try:
  export KUBECONFIG=$kubeconfig
  alias kubectl="$(tenet_bin_dir)/kubectl"
  kubectl get tenet -A                        # every Tenet object, with its Ready column
  kubectl explain apipolicy.spec.rules        # the API, documented
  kubectl edit apipolicy broken -n demo       # fix the rule and watch Ready flip
  kubectl annotate pod orders-7f9c -n demo tenet.dev/release="reviewed"   # release the quarantined pod
  npm run tenet -- inspect cert $TENET_STATE_DIR/orders.crt
  curl --cacert <(kubectl get cm -n tenet-system tenet-trust-bundle -o jsonpath='{.data.ca\.crt}') https://127.0.0.1:$secure_port/v1/revocations
  tail -f $oplog
Stop everything with: hack/quickstart.sh stop
MSG
