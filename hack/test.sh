#!/usr/bin/env bash
# The test command (README and .ci/run): installs what is missing (Node 24, npm packages, Debian
# packages, the Kubernetes binaries built from Go modules), builds Tenet, then runs the tiers:
#   unit         pure logic
#   integration  a real kube-apiserver + etcd (hack/controlplane.sh), real operator and enforcer processes
#   e2e          a real node (hack/node.sh: kubelet, containerd, CNI, NetworkPolicy), Tenet as its
#                Deployment, real pods
#
#   hack/test.sh                       every tier, in that order
#   hack/test.sh unit|integration|e2e  one tier (several may be named)
#   hack/test.sh FILE...               only those test files (e2e files bring the node up first)
# Ends with one line "N passed, N failed, N skipped" over everything that ran.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=hack/lib.sh
source "$here/lib.sh"
bash "$here/deps.sh"
use_node
cd "$root"
t0=$SECONDS
npx tsx hack/gen-types.ts --check
npx tsx hack/gen-deploy.ts --check
npx tsc --noEmit -p .
npm run -s build
log "checked and built in $((SECONDS - t0))s"

declare -A globs=([unit]='test/unit/**/*.test.ts' [integration]='test/integration/**/*.test.ts' [e2e]='test/e2e/**/*.test.ts')
runs=()
if [[ $# -eq 0 ]]; then set -- unit integration e2e; fi
files=()
for a in "$@"; do
  if [[ -n ${globs[$a]:-} ]]; then runs+=("$a"); else files+=("$a"); fi
done

passed=0 failed=0 skipped=0 status=0 report=()
mocha_tier() { # mocha_tier NAME PATTERN...: run mocha, add its closing line to the totals
  local name=$1 s=$SECONDS out; shift
  out=$(mktemp)
  if [[ $name == e2e* ]]; then
    # CI starts from an empty cluster: a node left by an earlier run (its processes ended) is purged.
    if [[ ${CI:-} == true ]]; then bash "$here/node.sh" down --purge >/dev/null 2>&1 || true; fi
    bash "$here/node.sh" up >/dev/null
    bash "$here/node.sh" install
  fi
  npx mocha "$@" 2>&1 | tee "$out" || status=1
  local line; line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$out" | tail -n 1 || true)
  if [[ -z $line ]]; then status=1; line="0 passed, 1 failed, 0 skipped"; log "tier $name ended without a summary"; fi
  read -r p _ f _ k _ <<<"${line//,/}"
  passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + k))
  report+=("$name: $line in $((SECONDS - s))s")
  rm -f "$out"
}
for t in "${runs[@]}"; do mocha_tier "$t" "${globs[$t]}"; done
if ((${#files[@]})); then
  if printf '%s\n' "${files[@]}" | grep -q '^test/e2e/'; then mocha_tier e2e-files "${files[@]}"; else mocha_tier files "${files[@]}"; fi
fi
printf '\n' >&2
for r in "${report[@]}"; do log "$r"; done
log "total $((SECONDS - t0))s"
echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0 && status == 0))
