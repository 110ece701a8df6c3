// The Go-built tools the deploy tests run (hack/lib.sh builds them into the cache; hack/deps.sh
// does so before the tiers): Helm, the Argo CD Lua runner, kubectl (for `kubectl kustomize`).
import path from "node:path";
import { parseAllDocuments } from "yaml";
import { repoRoot } from "./controlplane.ts";
import { run } from "./exec.ts";

const lib = path.join(repoRoot, "hack/lib.sh");
const paths = new Map<string, Promise<string>>();

/** Builds the tool when missing (cold Helm: minutes) and returns its path. */
function tool(build: string, bin: string): Promise<string> {
  if (!paths.has(bin)) paths.set(bin, run("bash", ["-c", `source "${lib}" && ${build} && ${bin}`]).then((r) => r.stdout.trim().split("\n").pop()!));
  return paths.get(bin)!;
}

export const helmBin = () => tool("build_helm", "helm_bin");
export const argocdLuaBin = () => tool("build_argocd_lua", "argocd_lua_bin");
export const kubectlBin = () => tool('bash "$hack_dir/build-controlplane.sh" >/dev/null', 'echo "$(tenet_bin_dir)/kubectl"');

export async function helm(args: string[], opts: { allowFail?: boolean } = {}) {
  return run(await helmBin(), args, opts);
}

export const chartDir = path.join(repoRoot, "charts/tenet");

/** `helm template` of the chart (release "tenet" in tenet-system unless told), as objects. */
export async function renderChart(set: string[] = [], namespace = "tenet-system"): Promise<any[]> {
  const { stdout } = await helm(["template", "tenet", chartDir, "--namespace", namespace, ...set.flatMap((s) => ["--set", s])]);
  return objects(stdout);
}

/** `kubectl kustomize DIR` (no cluster needed), as objects. */
export async function kustomize(dir: string): Promise<any[]> {
  const { stdout } = await run(await kubectlBin(), ["kustomize", path.join(repoRoot, dir)]);
  return objects(stdout);
}

export const objects = (text: string): any[] => parseAllDocuments(text).map((d) => d.toJS()).filter((o) => o && typeof o === "object");
export const key = (o: any) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;
