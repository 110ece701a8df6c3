#!/usr/bin/env bash
# The test command (README and .ci/run): installs what is missing, then runs every test —
# unit tests and integration tests against a real local kube-apiserver + etcd.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bash "$here/deps.sh"
cd "$root"
npx tsx hack/gen-types.ts --check
npx tsc --noEmit -p .
# With no arguments, every test; with arguments, only those files (e.g. one integration test).
if [[ $# -eq 0 ]]; then set -- 'test/unit/**/*.test.ts' 'test/integration/**/*.test.ts'; fi
exec npx mocha "$@"
