// kstatus, the real library (sigs.k8s.io/cli-utils/pkg/kstatus/status, what Flux uses for health):
// a small CLI of ours built from hack/modules/kstatus through the Go module proxy on first use
// (cached in ~/.cache/tenet/bin, like the control plane's binaries).
import { readFileSync } from "node:fs";
import path from "node:path";
import { repoRoot } from "./controlplane.ts";
import { run } from "./exec.ts";

let binary: Promise<string> | undefined;

function kstatusBinary(): Promise<string> {
  binary ??= (async () => {
    const version = /sigs\.k8s\.io\/cli-utils (v\S+)/.exec(readFileSync(path.join(repoRoot, "hack/modules/kstatus/go.mod"), "utf8"))![1];
    const script = `source "${repoRoot}/hack/lib.sh" && out="$TENET_CACHE/bin/kstatus-${version}/kstatus" && go_build kstatus . "$out" && echo "$out"`;
    const { stdout } = await run("bash", ["-c", script]);
    return stdout.trim().split("\n").pop()!;
  })();
  return binary;
}

export interface KStatus {
  status: "Current" | "InProgress" | "Failed" | "Terminating" | "Unknown" | "Error";
  message: string;
}

/** What kstatus says about each object (as read from the API server). */
export async function kstatus(...objects: unknown[]): Promise<KStatus[]> {
  const { stdout } = await run(await kstatusBinary(), [], { input: objects.map((o) => JSON.stringify(o)).join("\n") + "\n" });
  return stdout.trim().split("\n").map((l) => JSON.parse(l));
}
