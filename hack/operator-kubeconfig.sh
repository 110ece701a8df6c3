#!/usr/bin/env bash
# Writes a kubeconfig that authenticates as tenet-system/tenet-operator with a bound token,
# so a locally run operator has exactly the RBAC that manifests/ grants.
#   hack/operator-kubeconfig.sh <admin kubeconfig> <output path>
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
admin=$1 out=$2
kubectl="$(tenet_bin_dir)/kubectl --kubeconfig $admin"
token=$($kubectl -n tenet-system create token tenet-operator --duration=12h)
server=$($kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
ca=$($kubectl config view --minify -o jsonpath='{.clusters[0].cluster.certificate-authority}')
umask 077
cat > "$out" <<KC
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$server", certificate-authority: "$ca"}}]
users: [{name: tenet-operator, user: {token: "$token"}}]
contexts: [{name: local, context: {cluster: local, user: tenet-operator}}]
current-context: local
KC
