// One image definition: the Dockerfile (for users with Docker) and hack/image/build.sh (our
// machines, CI, the real node) must build the same images from the same sources.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "../..");

interface Stage { name: string; from: string; copies: { from?: string; src: string; dest: string }[]; entrypoint?: unknown; cmd?: unknown; user?: string; workdir?: string; env: string[] }

/** The Dockerfile's stages, with the instructions the comparison needs (exec-form JSON only). */
function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const [op, ...rest] = line.split(/\s+/);
    const args = rest.join(" ");
    const stage = stages[stages.length - 1];
    switch (op.toUpperCase()) {
      case "FROM": {
        const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
        assert.ok(m, `FROM line: ${line}`);
        stages.push({ name: m[2] ?? String(stages.length), from: m[1], copies: [], env: [] });
        break;
      }
      case "COPY": {
        const parts = rest.filter((p) => !p.startsWith("--") || p.startsWith("--from="));
        const from = parts[0]?.startsWith("--from=") ? parts.shift()!.slice("--from=".length) : undefined;
        const dest = parts.pop()!;
        for (const src of parts) stage.copies.push({ from, src, dest });
        break;
      }
      case "ENTRYPOINT": stage.entrypoint = JSON.parse(args); break;
      case "CMD": stage.cmd = JSON.parse(args); break;
      case "USER": stage.user = args; break;
      case "WORKDIR": stage.workdir = args; break;
      case "ENV": stage.env.push(args); break;
    }
  }
  return stages;
}

/** A COPY destination as an absolute path (relative ones are under WORKDIR). */
const absolute = (dest: string, workdir = "/") => path.posix.normalize(dest.startsWith("/") ? dest : path.posix.join(workdir, dest));

describe("image definition: Dockerfile and hack/image/build.sh agree", () => {
  const stages = parseDockerfile(readFileSync(path.join(root, "Dockerfile"), "utf8"));
  const described = JSON.parse(execFileSync("bash", [path.join(root, "hack/image/build.sh"), "--describe"], { encoding: "utf8" }));
  const stage = (name: string) => {
    const s = stages.find((x) => x.name === name);
    assert.ok(s, `the Dockerfile has no stage named ${name}`);
    return s;
  };

  it("builds on the Node.js version in .node-version", () => {
    const version = readFileSync(path.join(root, ".node-version"), "utf8").trim();
    assert.equal(described.node, version);
    for (const s of stages.filter((x) => x.from.startsWith("node:"))) assert.ok(s.from.startsWith(`node:${version}-`), `stage ${s.name} is FROM ${s.from}, not Node ${version}`);
  });

  it("compiles the same source folders", () => {
    const build = stage("build");
    // hack/build-addon.sh is a build tool (the enforcer's addon), not a source folder.
    const copied = build.copies.filter((c) => !c.from && !c.src.includes(".json") && !c.src.startsWith("hack/")).map((c) => c.src).sort();
    assert.deepEqual(copied, described.sources.split(" ").sort());
  });

  for (const name of ["operator", "enforcer"]) {
    it(`the ${name} image has the same files, entrypoint, user, workdir and environment`, () => {
      const s = stage(name);
      const want = described[name];
      const files = want.files.split(" ").map((f: string) => {
        const [dest, src] = f.split(":");
        return { src: `/src/${src}`, dest: path.posix.join(want.workdir, dest) };
      });
      const appCopies = s.copies.filter((c) => c.src.startsWith("/src/")).map((c) => ({ src: c.src, dest: absolute(c.dest, s.workdir) }));
      assert.deepEqual(appCopies.sort((a, b) => a.dest.localeCompare(b.dest)), files.sort((a: any, b: any) => a.dest.localeCompare(b.dest)));
      // Both put node where the entrypoint expects it.
      assert.ok(s.from.startsWith("node:") || s.copies.some((c) => c.dest === "/usr/local/bin/node"), `stage ${name} has no /usr/local/bin/node`);
      assert.deepEqual(s.entrypoint, want.entrypoint);
      assert.deepEqual(s.cmd ?? null, want.cmd);
      assert.equal(s.user, want.user);
      assert.equal(s.workdir, want.workdir);
      for (const e of s.env) assert.ok(want.env.includes(e), `ENV ${e} of stage ${name} is not set by hack/image/build.sh`);
    });
  }

  it("the capture image runs the same script as root, with iptables", () => {
    const s = stage("capture");
    assert.deepEqual(s.entrypoint, described.capture.entrypoint);
    assert.equal(s.user, described.capture.user);
    assert.ok(s.copies.some((c) => c.src === "hack/image/capture.sh" && c.dest === "/usr/local/bin/tenet-capture"));
  });

  it("the enforcer image runs the bundle that the tests run", () => {
    const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
    assert.match(pkg.scripts["build:enforcer"], /--outfile=build\/enforcer\.mjs/);
    assert.match(described.enforcer.files, /enforcer\.mjs:build\/enforcer\.mjs/);
  });
});
