#!/usr/bin/env bash
# Builds Tenet's three images without Docker or a registry, from the same sources as the
# Dockerfile (test/unit/image.test.ts compares them):
#   operator  Node.js (.node-version) + the libraries it loads, the compiled JavaScript
#             (npm run build) and the production npm packages
#   enforcer  Node.js + its libraries, one bundled file (build/enforcer.mjs) and the
#             SO_ORIGINAL_DST addon (build/origdst.node): no npm packages, no shell
#   capture   the init container of transparent capture: iptables (nft and legacy), busybox's
#             sh, hack/image/capture.sh; no Node.js
# Each is a docker-archive tar that `ctr images import` and `docker load` accept.
#
#   hack/image/build.sh [OUT_DIR]     build (cached by the digest of the inputs); prints the tar paths
#   hack/image/build.sh --describe    what goes into each image, as JSON (for the test)
#
# Env: TENET_IMAGE_REPO (default tenet.local), TENET_IMAGE_TAG (default dev).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=hack/lib.sh
source "$here/../lib.sh"
# shellcheck source=hack/image/rootfs.sh
source "$here/rootfs.sh"

repo=${TENET_IMAGE_REPO:-tenet.local} tag=${TENET_IMAGE_TAG:-dev}
sources=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8").replace(/^\s*\/\/.*$/mg,"")).include.join(" "))' "$root/tsconfig.build.json")
env_json='["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","NODE_ENV=production"]'
user=65532:65532 workdir=/app
# What each image holds (/app paths ← build stage paths) and how it starts: keep in step with
# the Dockerfile's final stages.
operator_files="package.json:package.json build:build node_modules:node_modules"
operator_entrypoint='["/usr/local/bin/node"]' operator_cmd='["/app/build/operator/main.js"]'
enforcer_files="enforcer.mjs:build/enforcer.mjs origdst.node:build/origdst.node"
enforcer_entrypoint='["/usr/local/bin/node","/app/enforcer.mjs"]' enforcer_cmd=null
capture_entrypoint='["/bin/sh","/usr/local/bin/tenet-capture"]'
xt=/usr/lib/x86_64-linux-gnu/xtables

describe() { # describe NAME
  local files=${1}_files entrypoint=${1}_entrypoint cmd=${1}_cmd
  printf '"%s":{"image":"%s/tenet-%s:%s","files":"%s","entrypoint":%s,"cmd":%s,"env":%s,"user":"%s","workdir":"%s"}' \
    "$1" "$repo" "$1" "$tag" "${!files}" "${!entrypoint}" "${!cmd}" "$env_json" "$user" "$workdir"
}
if [[ ${1:-} == --describe ]]; then
  printf '{"node":"%s","sources":"%s",%s,%s,"capture":{"image":"%s/tenet-capture:%s","entrypoint":%s,"user":"0:0"}}\n' "$TENET_NODE_VERSION" "$sources" "$(describe operator)" "$(describe enforcer)" "$repo" "$tag" "$capture_entrypoint"
  exit 0
fi

out=${1:-$TENET_CACHE/images}
mkdir -p "$out"
use_node
t0=$SECONDS

# Inputs: the node binary, the lock file, the sources, these scripts. Same inputs → same tars.
# shellcheck disable=SC2086
digest=$( (cd "$root" && sha256sum "$(command -v node)" package.json package-lock.json tsconfig.json tsconfig.build.json \
  "$here/build.sh" "$here/rootfs.sh" "$here/mkimage.sh" "$here/capture.sh" hack/build-addon.sh /usr/sbin/xtables-nft-multi /usr/sbin/xtables-legacy-multi /bin/busybox \
  $(find $sources -type f | sort); echo "$repo $tag") |
  sha256sum | cut -c1-16)
if [[ -f "$out/tenet-operator.tar" && -f "$out/tenet-enforcer.tar" && -f "$out/tenet-capture.tar" && "$(cat "$out/tenet.inputs" 2>/dev/null)" == "$digest" ]]; then
  echo "$out/tenet-operator.tar"; echo "$out/tenet-enforcer.tar"; echo "$out/tenet-capture.tar"; exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log "building images $repo/tenet-{operator,enforcer}:$tag (npm ci, tsc, esbuild)"
stage=$work/src
mkdir -p "$stage"
# shellcheck disable=SC2086
(cd "$root" && cp -r package.json package-lock.json tsconfig.json tsconfig.build.json $sources "$stage/" && mkdir -p "$stage/hack" && cp hack/build-addon.sh "$stage/hack/")
(cd "$stage" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null && npm run -s build &&
  npm prune --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)

for name in operator enforcer; do
  r=$work/rootfs-$name files=${name}_files entrypoint=${name}_entrypoint cmd=${name}_cmd
  skeleton "$r"
  add_elf "$r" "$(command -v node)" /usr/local/bin/node
  mkdir -p "$r$workdir"
  for f in ${!files}; do cp -r "$stage/${f#*:}" "$r$workdir/${f%%:*}"; done
  id=$(bash "$here/mkimage.sh" "$out/tenet-$name.tar" "$repo/tenet-$name:$tag" "$r" "${!entrypoint}" "$env_json" "${!cmd}" "$user" "$workdir")
  log "built $repo/tenet-$name:$tag ($id): $(du -sh "$r" | cut -f1) unpacked"
done
# capture: iptables from this machine's Debian packages, busybox for sh, the script.
r=$work/rootfs-capture
skeleton "$r"
for f in /usr/sbin/xtables-nft-multi /usr/sbin/xtables-legacy-multi "$xt"/*.so; do add_elf "$r" "$f"; done
mkdir -p "$r/bin" "$r/usr/local/bin" "$r/run/xtables"; cp /bin/busybox "$r/bin/busybox"; ln -s busybox "$r/bin/sh"
cp "$here/capture.sh" "$r/usr/local/bin/tenet-capture"
id=$(bash "$here/mkimage.sh" "$out/tenet-capture.tar" "$repo/tenet-capture:$tag" "$r" "$capture_entrypoint" "$env_json" null "0:0" /)
log "built $repo/tenet-capture:$tag ($id): $(du -sh "$r" | cut -f1) unpacked"
echo "$digest" > "$out/tenet.inputs"
log "images built in $((SECONDS - t0))s"
echo "$out/tenet-operator.tar"; echo "$out/tenet-enforcer.tar"; echo "$out/tenet-capture.tar"
