// The original destination of a captured connection: iptables REDIRECT rewrote it to one of the
// enforcer's capture ports, and only the kernel's conntrack entry still knows where the app (or
// the caller) meant to go. Node has no SO_ORIGINAL_DST, so a small Node-API addon
// (enforcer/native/origdst.c, built by hack/build-addon.sh, shipped next to the bundle) asks.
import { existsSync } from "node:fs";
import type { Socket } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

export interface OriginalDst {
  address: string;
  port: number;
  family: 4 | 6;
}
export type OrigDstFn = (socket: Socket) => OriginalDst | undefined;

/** The addon's originalDst, or a clear error naming where it looked. */
export function loadOrigDst(file?: string): OrigDstFn {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // Next to build/enforcer.mjs in the image; build/ when run from the sources (tests, tsx).
  const candidates = file ? [file] : [path.join(here, "origdst.node"), path.resolve(here, "../build/origdst.node")];
  const found = candidates.find((f) => existsSync(f));
  if (!found) throw new Error(`the SO_ORIGINAL_DST addon is missing (looked in ${candidates.join(", ")}): build it with hack/build-addon.sh or set TENET_ORIGDST_ADDON`);
  const mod = { exports: {} as { originalDst(fd: number): [string, number, number] } };
  process.dlopen(mod, found);
  const native = mod.exports.originalDst;
  return (socket) => {
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== "number" || fd < 0) return undefined;
    try {
      const [address, port, family] = native(fd);
      return { address, port, family: family === 6 ? 6 : 4 };
    } catch {
      // Not redirected (a direct connection to the capture port) or no conntrack entry.
      return undefined;
    }
  };
}
