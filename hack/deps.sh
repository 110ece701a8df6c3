#!/usr/bin/env bash
# Installs what Tenet's scripts need on a fresh machine: Debian packages (if missing), Node.js 24
# (.node-version), npm packages (if package-lock.json changed), the control-plane binaries, Helm
# and the Argo CD Lua runner (cached).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
source "$here/lib.sh"

missing=()
for tool in openssl curl; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
need npm; need go
use_node

stamp="$root/node_modules/.tenet-lock-hash"
# The lock file's content, not its path: worktrees that share one node_modules agree on the stamp.
hash=$( (sha256sum < "$root/package-lock.json"; node --version) | sha256sum | cut -c1-16)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$hash" ]]; then
  log "installing npm packages (npm ci)"
  (cd "$root" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$hash" > "$stamp"
fi

bash "$here/build-controlplane.sh" >/dev/null
# Tools of the unit tier: Helm (helm lint/template of charts/tenet; cold ~5.5 min) and the Lua
# runner of the Argo CD health checks (cold ~35 s). Cached like the rest.
build_helm
build_argocd_lua
