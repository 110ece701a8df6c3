#!/bin/sh
# tenet-capture: the init container that installs transparent capture in the pod's network
# namespace (docs/capture.md). The rules come from the operator (admission/capture.ts)
# in TENET_CAPTURE_RULES / TENET_CAPTURE_RULES6 (iptables-restore input, nat table, chains of
# our own). Runs as root with NET_ADMIN and NET_RAW only, exits when the rules are in: the
# enforcer and the app never hold those capabilities. Fails (and the pod does not start) when
# the IPv4 rules cannot be installed.
set -eu
[ -n "${TENET_CAPTURE_RULES:-}" ] || { echo "tenet-capture: TENET_CAPTURE_RULES is empty" >&2; exit 2; }
# The pod's namespace is empty, so either backend works; nft first (what kube-proxy and
# kube-router use on Debian 12 nodes), legacy where the kernel has no nf_tables.
backend=
for b in nft legacy; do
  if "xtables-$b-multi" iptables -t nat -S >/dev/null 2>&1; then backend=$b; break; fi
done
[ -n "$backend" ] || { echo "tenet-capture: neither iptables-nft nor iptables-legacy can use the nat table (NET_ADMIN missing, or no kernel support)" >&2; exit 1; }
printf '%s' "$TENET_CAPTURE_RULES" | "xtables-$backend-multi" iptables-restore --noflush
echo "tenet-capture: IPv4 rules installed (iptables-$backend)"
if [ -n "${TENET_CAPTURE_RULES6:-}" ] && "xtables-$backend-multi" ip6tables -t nat -S >/dev/null 2>&1; then
  printf '%s' "$TENET_CAPTURE_RULES6" | "xtables-$backend-multi" ip6tables-restore --noflush
  echo "tenet-capture: IPv6 rules installed"
else
  echo "tenet-capture: no IPv6 nat table in this pod; IPv4 only"
fi
"xtables-$backend-multi" iptables-save -t nat
