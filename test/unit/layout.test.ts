// The layout rules of ADR 6 (docs/adr/0006-one-concern-per-folder.md), checked on the source:
// which folders each program's import graph may reach, and how long a production file may be.
import { strict as assert } from "node:assert";
import fs from "node:fs";
import path from "node:path";

const REPO = path.resolve(import.meta.dirname, "../..");
const IMPORT = /(?:^|\n)\s*(import|export)\s+(type\s+)?(?:[^"';]*?\sfrom\s+)?"([^"]+)"|import\(\s*"([^"]+)"\s*\)/g;

interface Edge {
  target: string; // repo-relative file, or a package name
  typeOnly: boolean;
}

function edges(file: string): Edge[] {
  const text = fs.readFileSync(path.join(REPO, file), "utf8");
  const out: Edge[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[3] ?? m[4];
    const typeOnly = !!m[2];
    if (spec.startsWith("node:")) continue;
    if (spec.startsWith(".")) out.push({ target: path.relative(REPO, path.resolve(REPO, path.dirname(file), spec)), typeOnly });
    else out.push({ target: spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0], typeOnly });
  }
  return out;
}

/** Every file and package reachable from the entry points; `runtime` follows only imports that survive compilation. */
function graph(entries: string[], runtime: boolean): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const todo = [...entries];
  while (todo.length) {
    const f = todo.pop()!;
    if (files.has(f)) continue;
    files.add(f);
    for (const e of edges(f)) {
      if (runtime && e.typeOnly) continue;
      if (e.target.endsWith(".ts")) todo.push(e.target);
      else packages.add(e.target);
    }
  }
  return { files, packages };
}

const topFolder = (f: string) => f.split("/")[0];

describe("layout (ADR 6)", () => {
  const enforcerEntries = fs.readdirSync(path.join(REPO, "enforcer")).filter((f) => f.endsWith(".ts")).map((f) => `enforcer/${f}`);
  const cliEntries = fs.readdirSync(path.join(REPO, "cli")).filter((f) => f.endsWith(".ts")).map((f) => `cli/${f}`);

  it("the enforcer imports only enforcer/, pki/, policy/, common/ and crds/types.gen.ts", () => {
    const { files } = graph(enforcerEntries, false);
    const outside = [...files].filter((f) => !["enforcer", "pki", "policy", "common"].includes(topFolder(f)) && f !== "crds/types.gen.ts");
    assert.deepEqual(outside, []);
  });

  it("the enforcer does not need @kubernetes/client-node at run time", () => {
    const { packages } = graph(enforcerEntries, true);
    assert.ok(!packages.has("@kubernetes/client-node"), [...packages].join(", "));
  });

  it("the CLI imports only cli/ and the shared folders admission/, policy/, scans/ (not scans/informers.ts), pki/, common/ and crds/*.gen.ts", () => {
    const { files } = graph(cliEntries, false);
    const outside = [...files].filter((f) => (!["cli", "admission", "policy", "scans", "pki", "common"].includes(topFolder(f)) && !["crds/types.gen.ts", "crds/defaults.gen.ts"].includes(f)) || f === "scans/informers.ts");
    assert.deepEqual(outside, []);
  });

  it("the CLI does not need @kubernetes/client-node at run time", () => {
    const { packages } = graph(cliEntries, true);
    assert.ok(!packages.has("@kubernetes/client-node"), [...packages].join(", "));
  });

  it("shared folders import no program, except scans/informers.ts (the operator's side of scan data)", () => {
    const shared = ["admission", "common", "pki", "policy", "scans", "signals", "crds"];
    const bad: string[] = [];
    for (const dir of shared) {
      for (const f of fs.readdirSync(path.join(REPO, dir), { recursive: true }) as string[]) {
        if (!f.endsWith(".ts")) continue;
        const file = `${dir}/${f}`;
        if (file === "scans/informers.ts") continue;
        for (const e of edges(file)) if (["operator", "enforcer", "cli"].includes(topFolder(e.target))) bad.push(`${file} → ${e.target}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it("no production file is over 600 lines", () => {
    const long: string[] = [];
    for (const dir of ["admission", "common", "pki", "policy", "scans", "signals", "operator", "enforcer", "cli"]) {
      for (const f of fs.readdirSync(path.join(REPO, dir), { recursive: true }) as string[]) {
        if (!f.endsWith(".ts")) continue;
        const lines = fs.readFileSync(path.join(REPO, dir, f), "utf8").split("\n").length;
        if (lines > 600) long.push(`${dir}/${f}: ${lines} lines`);
      }
    }
    assert.deepEqual(long, []);
  });
});
