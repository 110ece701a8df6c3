#!/usr/bin/env bash
# Tenet in one command, on a real single-node cluster (hack/node.sh): Tenet installed as its
# Deployment, the samples in examples/ as real pods, then what happened at each layer.
#
#   hack/quickstart.sh         start everything and show the result (leaves it running)
#   hack/quickstart.sh stop    stop the node (hack/node.sh down)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=hack/lib.sh
source "$here/lib.sh"

if [[ "${1:-}" == "stop" ]]; then exec bash "$here/node.sh" down; fi

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
t0=$SECONDS

step "1/4 Installing dependencies (Node.js 24, npm packages; the first run builds Kubernetes from Go modules: ~15 min on 2 cores, then cached)"
bash "$here/deps.sh"
use_node

step "2/4 Starting a real node: kubelet, containerd, CNI, kube-proxy, CoreDNS, kube-router (NetworkPolicy)"
kubeconfig=$(bash "$here/node.sh" up | tail -n 1)
kubectl() { "$(tenet_bin_dir)/kubectl" --kubeconfig "$kubeconfig" "$@"; }
in_node() { bash "$here/node.sh" exec "$@"; }

step "3/4 Installing Tenet as its Deployment (kubectl apply -k manifests/overlays/local: CRDs, RBAC, 2 replicas, PDB, Service)"
bash "$here/node.sh" install
kubectl -n tenet-system get deploy -o wide; echo; kubectl -n tenet-system get pods -o wide --field-selector=status.phase=Running

step "4/4 Applying the samples (kubectl apply -k examples/): identities, policies, a RuntimeRule, scan data, two workloads"
# A fresh start, so every step below shows what it says (an earlier run left a quarantine).
kubectl delete configmap trivy-orders -n tenet-system --ignore-not-found >/dev/null
kubectl delete namespace demo --ignore-not-found --wait=true --timeout=120s >/dev/null
kubectl apply -k "$root/examples"
kubectl -n demo rollout status deploy/orders --timeout=120s >/dev/null
kubectl -n demo rollout status deploy/frontend --timeout=120s >/dev/null
pod() { kubectl -n demo get pods -l "app=$1" --field-selector=status.phase=Running -o jsonpath='{.items[0].metadata.name}'; }
orders=$(pod orders) frontend=$(pod frontend)

step "What Tenet made of them"
kubectl get serviceidentities,apipolicies,runtimerules -n demo
echo
kubectl get serviceidentities,apipolicies,runtimerules -n demo \
  -o custom-columns='KIND:.kind,NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status,REASON:.status.conditions[?(@.type=="Ready")].reason,MESSAGE:.status.conditions[?(@.type=="Ready")].message'

step "Injection: real pods, each with the enforcer as a native sidecar (namespace label tenet.dev/inject=enabled)"
kubectl get pods -n demo -o wide
echo
kubectl get pods -n demo \
  -o custom-columns='POD:.metadata.name,SIDECAR:.spec.initContainers[0].name,IMAGE:.spec.initContainers[0].image,RESTART:.spec.initContainers[0].restartPolicy,APP:.spec.containers[*].name,CERTIFICATES:.metadata.annotations.tenet\.dev/certificates'

step "Identity: the certificate orders' enforcer presents (issued by Tenet's CA to the pod's projected token)"
ip=$(kubectl -n demo get pod "$orders" -o jsonpath='{.status.podIP}')
# (s_client fails the handshake, having no client certificate; the server's certificate came first)
{ in_node openssl s_client -connect "$ip:15443" -showcerts </dev/null 2>/dev/null || true; } |
  awk '/BEGIN CERT/{p=1} p{print} /END CERT/{exit}' | node "$root/build/cli/tenet.js" inspect cert -

step "Admission: a Deployment whose image has 2 critical vulnerabilities (RuntimeRule demo/baseline allows 0)"
echo "\$ kubectl apply -f examples/rejected/deployment-billing.yaml"
for attempt in 1 2 3 4 5; do
  if out=$(kubectl apply -f "$root/examples/rejected/deployment-billing.yaml" 2>&1); then
    kubectl delete -f "$root/examples/rejected/deployment-billing.yaml" --wait=false >/dev/null 2>&1 || true
    [[ $attempt -lt 5 ]] && { sleep 1; continue; }
    echo "$out"; die "the vulnerable Deployment was admitted"
  fi
  echo "$out" | fold -s -w 120
  break
done

call() { kubectl -n demo exec "$frontend" -c frontend -- node /app/http.js "$@"; }
step "Capture: pod $frontend's unmodified app calls orders by its Service name, no proxy setting; both enforcers carry it (mTLS, APIPolicy demo/orders, audit)"
for c in "GET http://orders.demo.svc/healthz|rule any-caller-health: any authenticated caller" \
         "GET http://orders.demo.svc/v1/orders|rule frontend-reads-and-creates-orders needs a JWT from auth.acme.example" \
         "DELETE http://orders.demo.svc/v1/orders/42|no rule grants scope delete"; do
  echo "\$ kubectl exec $frontend -c frontend -- node /app/http.js ${c%%|*}    (${c#*|})"
  # shellcheck disable=SC2086
  call ${c%%|*} | cut -c1-200
done
echo
echo "a bypass attempt: a pod without an enforcer (namespace default) calls orders' app port on its pod IP:"
# A pod left from an earlier run may have lost its sandbox when the node restarted: start afresh.
kubectl delete pod outsider -n default --ignore-not-found --grace-period=0 --force >/dev/null 2>&1 || true
kubectl run outsider -n default --image=ghcr.io/acme/e2e-app:1.0 --image-pull-policy=Never --restart=Never --command -- node /app/server.js >/dev/null 2>&1 || true
kubectl wait -n default --for=condition=Ready pod/outsider --timeout=60s >/dev/null
echo "\$ kubectl exec outsider -- node /app/http.js GET http://$ip:8080/healthz"
kubectl -n default exec outsider -- node /app/http.js GET "http://$ip:8080/healthz" | cut -c1-200 || true
sleep 1
echo
echo "audit records of orders' enforcer (one per attempt):"
kubectl -n demo logs "$orders" -c tenet-enforcer | grep '"log":"audit"' | tail -n 3 |
  node -e 'require("readline").createInterface({input:process.stdin}).on("line",l=>{const a=JSON.parse(l);console.log(JSON.stringify({time:a.time,caller:a.caller,posture:a.posture,method:a.method,path:a.path,api:a.api,scope:a.scope,decision:a.decision,rule:a.rule,reason:a.reason,status:a.status}))})'

step "Signals: a Falco alert (a shell in orders) and the API denials orders' enforcer reports become one Incident (RuntimeRule demo/baseline, correlation shell-then-api-denials)"
# The sender is set up the way falcosidekick is (docs/signals.md): a ServiceAccount allowed to
# `create signals` (ClusterRole tenet-signal-sender), its token (audience tenet), the serving CA.
kubectl -n tenet-system create serviceaccount falcosidekick --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl create clusterrolebinding tenet-quickstart-falcosidekick --clusterrole=tenet-signal-sender \
  --serviceaccount=tenet-system:falcosidekick --dry-run=client -o yaml | kubectl apply -f - >/dev/null
token=$(kubectl -n tenet-system create token falcosidekick --audience tenet --duration 10m)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
kubectl -n tenet-system get configmap tenet-trust-bundle -o jsonpath='{.data.operator-ca\.crt}' >"$work/operator-ca.crt"
# The Service tenet-signals selects the leader's pod only (correlations live in one replica).
for _ in $(seq 1 40); do
  sigip=$(kubectl -n tenet-system get endpointslices -l kubernetes.io/service-name=tenet-signals -o jsonpath='{.items[0].endpoints[0].addresses[0]}' 2>/dev/null || true)
  [[ -n $sigip ]] && break
  sleep 0.5
done
[[ -n $sigip ]] || die "the Service tenet-signals has no endpoint (no replica labelled tenet.dev/signals-leader=true)"
now=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
cat >"$work/falco.json" <<JSON
[{"uuid":"$(cat /proc/sys/kernel/random/uuid)","hostname":"tenet-node","priority":"Warning","rule":"Terminal shell in container","source":"syscall","time":"$now","tags":["container","mitre_execution","shell"],"output":"Warning A shell was spawned in a container with an attached terminal (user=root k8s.ns=demo k8s.pod=$orders shell=sh)","output_fields":{"k8s.ns.name":"demo","k8s.pod.name":"$orders","proc.name":"sh","user.name":"root","evt.time":$(date +%s%N)}}]
JSON
echo "\$ curl -X POST https://tenet-signals.tenet-system.svc/v1/signals/falco   (falcosidekick's webhook output: rule \"Terminal shell in container\", pod $orders)"
in_node curl -sS --cacert "$work/operator-ca.crt" --resolve "tenet-signals.tenet-system.svc:9443:$sigip" \
  -H "authorization: Bearer $token" -H 'content-type: application/json' --data-binary @"$work/falco.json" \
  https://tenet-signals.tenet-system.svc:9443/v1/signals/falco; echo
echo "then 5 calls from $frontend that orders' APIPolicy denies (orders' enforcer reports them every 5 s):"
for _ in 1 2 3 4 5; do call DELETE http://orders.demo.svc/v1/orders/42 | cut -c1-100; done
for _ in $(seq 1 60); do
  [[ "$(kubectl get pod "$orders" -n demo -o jsonpath='{.metadata.labels.tenet\.dev/quarantined}')" == "true" ]] && break
  sleep 0.5
done
kubectl get incidents -n demo
echo
kubectl get incidents -n demo -o jsonpath='{range .items[*]}{range .status.evidence[*]}  {.time}  {.layer}/{.source}  {.rule}{" x"}{.count}{"\n"}{end}{end}' | sed 's/ x$//'
kubectl get pods -n demo -L tenet.dev/posture,tenet.dev/quarantined
echo "orders is quarantined by the response isolate-compromised; releasing it takes update on runtimerules/release (an admin here):"
echo "\$ kubectl annotate pod $orders -n demo tenet.dev/release=quickstart-reviewed"
kubectl annotate pod "$orders" -n demo tenet.dev/release=quickstart-reviewed >/dev/null
for _ in $(seq 1 60); do
  [[ "$(kubectl get pod "$orders" -n demo -o jsonpath='{.metadata.labels.tenet\.dev/quarantined}')" != "true" ]] && break
  sleep 0.5
done
kubectl get pods -n demo -L tenet.dev/posture,tenet.dev/quarantined
sleep 6 # the enforcers fetch orders' fresh certificate and the shorter revocation list

step "Rescan: new scan data says orders' image has a critical vulnerability (kubectl apply -f examples/new-scan/)"
direct() { kubectl -n demo exec "$frontend" -c frontend -- node /app/fetch.js "http://$ip:8080/healthz" 2000 2>&1 | cut -c1-160; }
echo "before, from pod $frontend straight to orders' port: $(direct)"
kubectl apply -f "$root/examples/new-scan/trivy-report-orders.yaml"
for _ in $(seq 1 100); do
  [[ "$(kubectl get pod "$orders" -n demo -o jsonpath='{.metadata.labels.tenet\.dev/quarantined}')" == "true" ]] && break
  sleep 0.3
done
kubectl get pods -n demo -L tenet.dev/posture,tenet.dev/quarantined
echo
kubectl get networkpolicy tenet-quarantine -n demo -o custom-columns='NETWORKPOLICY:.metadata.name,SELECTS:.spec.podSelector.matchLabels,TYPES:.spec.policyTypes'
sleep 2
echo
echo "after, the same call from pod $frontend (NetworkPolicy, enforced by kube-router): $(direct)"
echo "and through the enforcers (orders' certificate is revoked; peers learn it within seconds):"
sleep 5
call GET http://orders.demo.svc/healthz | cut -c1-200 || true
echo "revocation list entries (serial, notAfter, version, reason; sharded over tenet-revocations-0 … -15):"
for i in $(seq 0 15); do
  kubectl get configmap "tenet-revocations-$i" -n tenet-system -o jsonpath='{.data.entries}' 2>/dev/null | sed -e '/^$/d' -e 's/^/  /'
done
echo "(which pod and why: the Quarantined Events below and the operator's \"certificates revoked\" log line)"

step "Events"
kubectl get events -n demo --sort-by=.lastTimestamp -o custom-columns='TYPE:.type,REASON:.reason,OBJECT:.involvedObject.kind,NAME:.involvedObject.name,MESSAGE:.message' | tail -n 15

step "Operator log (the leader's last lines)"
leader=$(kubectl -n tenet-system get lease tenet-operator-leader -o jsonpath='{.spec.holderIdentity}')
kubectl -n tenet-system logs "$leader" --tail=12 | cut -c1-240

cat <<MSG

Tenet is running on a real node ($((SECONDS - t0))s). Try:
  export KUBECONFIG=$kubeconfig
  alias kubectl="$(tenet_bin_dir)/kubectl"
  kubectl get tenet -A                          # every Tenet object, with its Ready column
  kubectl get pods -A -o wide                   # real pods
  kubectl edit apipolicy broken -n demo         # fix the rule and watch Ready flip
  kubectl annotate pod $orders -n demo tenet.dev/release="reviewed"   # release the quarantined pod
  kubectl -n demo logs $orders -c tenet-enforcer   # the enforcer's log and audit records
  hack/node.sh status                           # the node's daemons
Stop everything with: hack/quickstart.sh stop   (hack/node.sh down --purge also deletes the cluster)
MSG
