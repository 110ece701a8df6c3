// Runs the real enforcer as a child process (node + tsx, as the sidecar runs it), captures its
// JSON log lines and its audit file, and kills it after each test. Also: a tiny loopback app to
// put behind it, and static-mode directories (certificates from an in-process CA) for hostile
// tests and benchmarks.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { createCA } from "../../operator/ca/keypair.ts";
import { issueLeaf } from "../../operator/ca/leaf.ts";
import { type CAKeyPair } from "../../operator/ca/signing.ts";
import crypto from "node:crypto";
import { repoRoot } from "./controlplane.ts";
import { fetchMetrics, waitFor } from "./exec.ts";
import { built } from "./build.ts";

const live = new Set<EnforcerProcess>();

export class EnforcerProcess {
  readonly logs: any[] = [];
  inboundPort = 0;
  outboundPort = 0;
  healthPort = 0;
  private exited: Promise<number | null>;

  private constructor(
    readonly name: string,
    readonly auditFile: string,
    private readonly child: ChildProcess,
  ) {
    live.add(this);
    this.exited = new Promise((r) => child.on("exit", (code, sig) => r(code ?? (sig ? -1 : null))));
    createInterface({ input: child.stdout! }).on("line", (l) => {
      try {
        const rec = JSON.parse(l);
        this.logs.push(rec);
        if (rec.msg === "enforcer listening") Object.assign(this, { inboundPort: rec.inboundPort, outboundPort: rec.outboundPort, healthPort: rec.healthPort });
      } catch {
        this.logs.push({ raw: l });
      }
    });
    child.stderr!.on("data", (d) => this.logs.push({ stderr: String(d) }));
  }

  static async start(name: string, env: Record<string, string>, opts: { wait?: boolean } = {}) {
    const dir = mkdtempSync(path.join(os.tmpdir(), `tenet-enforcer-${name}-`));
    const auditFile = path.join(dir, "audit.jsonl");
    const child = spawn(process.execPath, [built("build/enforcer.mjs")], {
      cwd: repoRoot,
      env: {
        ...process.env,
        POD_NAME: name,
        TENET_LISTEN_HOST: "127.0.0.1",
        TENET_HEALTH_HOST: "127.0.0.1",
        TENET_INBOUND_PORT: "0",
        TENET_OUTBOUND_PORT: "0",
        TENET_HEALTH_PORT: "0",
        TENET_AUDIT_FILE: auditFile,
        TENET_LOG_LEVEL: "debug",
        TENET_LOG_FORMAT: "json",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const p = new EnforcerProcess(name, auditFile, child);
    if (opts.wait !== false) await p.waitListening();
    return p;
  }

  async waitListening(timeoutMs = 30_000) {
    await waitFor(`enforcer ${this.name} to listen`, () => {
      if (!this.running) throw new Error(`enforcer ${this.name} exited: ${this.dump()}`);
      return this.inboundPort > 0;
    }, timeoutMs);
  }

  get running() {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid() {
    return this.child.pid!;
  }

  /** The audit records written so far. */
  audit(): any[] {
    if (!existsSync(this.auditFile)) return [];
    // Only complete lines: a record being written right now is read next time.
    const text = readFileSync(this.auditFile, "utf8");
    return text.slice(0, text.lastIndexOf("\n") + 1).split("\n").filter(Boolean).map((l) => JSON.parse(l));
  }

  waitForLog(what: string, pred: (rec: any) => boolean, timeoutMs = 20_000) {
    return waitFor(what, () => this.logs.find(pred), timeoutMs);
  }

  metrics(): Promise<Map<string, number>> {
    return fetchMetrics(this.healthPort);
  }

  async kill(signal: NodeJS.Signals = "SIGTERM") {
    if (this.running) this.child.kill(signal);
    const code = await this.exited;
    live.delete(this);
    return code;
  }

  dump() {
    return this.logs.map((l) => JSON.stringify(l)).join("\n").slice(-4000);
  }
}

export async function killAllEnforcers() {
  await Promise.all([...live].map((p) => p.kill("SIGKILL")));
}

/** A loopback HTTP app that echoes what it received (method, url, headers, body) as JSON. */
export async function echoApp(name: string) {
  const seen: { method: string; url: string; headers: http.IncomingHttpHeaders }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers });
      const body = JSON.stringify({ app: name, method: req.method, url: req.url, caller: req.headers["x-tenet-caller"] ?? null, headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(200, { "content-type": "application/json", "x-app": name, connection: "keep-alive, x-drop-me", "x-drop-me": "1" }).end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: (server.address() as AddressInfo).port, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** A certificate for `spiffeID` signed by `ca`, with its key (PEM). */
export function leafFor(ca: CAKeyPair, spiffeID: string, opts: { attributes?: Record<string, string>; ttlSeconds?: number; now?: Date } = {}) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
  const leaf = issueLeaf(ca, { publicKeyDer: publicKey.export({ type: "spki", format: "der" }) as Buffer, spiffeID, attributes: opts.attributes, ttlSeconds: opts.ttlSeconds ?? 3600, now: opts.now });
  return { key: privateKey.export({ type: "pkcs8", format: "pem" }) as string, cert: leaf.pem, serial: leaf.serial };
}

/** A TENET_ENFORCER_STATIC_DIR: key.pem, cert.pem, bundle.pem, policy.json. */
export function staticDir(ca: CAKeyPair, spiffeID: string, policy: unknown, attributes?: Record<string, string>) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "tenet-static-"));
  const leaf = leafFor(ca, spiffeID, { attributes });
  writeFileSync(path.join(dir, "key.pem"), leaf.key, { mode: 0o600 });
  writeFileSync(path.join(dir, "cert.pem"), leaf.cert);
  writeFileSync(path.join(dir, "bundle.pem"), ca.certPem);
  writeFileSync(path.join(dir, "policy.json"), JSON.stringify(policy));
  return { dir, ...leaf };
}

export const newCA = (name = "Tenet Test CA") => createCA({ commonName: name, validitySeconds: 86_400 });
