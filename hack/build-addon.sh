#!/usr/bin/env bash
# Builds the enforcer's native addon (enforcer/native/origdst.c: SO_ORIGINAL_DST for captured
# connections) with gcc against the headers of the Node.js on PATH (Node-API: one binary works
# on every Node ≥ 18; no node-gyp, nothing downloaded).
#   hack/build-addon.sh [OUT]   default build/origdst.node; skipped when OUT is newer than the source
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
src=$root/enforcer/native/origdst.c
out=${1:-$root/build/origdst.node}
[[ -f $out && $out -nt $src ]] && exit 0
node_bin=$(command -v node) || { echo "build-addon.sh: node is not on PATH (source hack/lib.sh && use_node)" >&2; exit 1; }
inc=$(cd "$(dirname "$node_bin")/.." && pwd)/include/node
[[ -f $inc/node_api.h ]] || { echo "build-addon.sh: no Node headers in $inc" >&2; exit 1; }
command -v gcc >/dev/null || { echo "build-addon.sh: gcc is needed (apt-get install gcc libc6-dev)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
# Undefined napi_* symbols are resolved against the node binary when it loads the addon.
gcc -O2 -Wall -Werror -fPIC -shared -fvisibility=hidden -I"$inc" -DNAPI_VERSION=8 -o "$out.tmp" "$src"
mv "$out.tmp" "$out"
