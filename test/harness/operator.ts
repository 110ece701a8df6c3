// Runs the real operator as a child process (node + tsx, exactly as `npm run operator`),
// captures its JSON log lines, and reads its /metrics. Every process started here is
// killed after each test, so a failing test leaves nothing running.
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { repoRoot } from "./controlplane.ts";
import { fetchMetrics, waitFor } from "./exec.ts";
import { built } from "./build.ts";

const live = new Set<OperatorProcess>();

export class OperatorProcess {
  readonly logs: any[] = [];
  healthPort = 0;
  securePort = 0;
  private exited?: Promise<number | null>;

  private constructor(
    readonly identity: string,
    private readonly child: ChildProcess,
  ) {
    live.add(this);
    this.exited = new Promise((r) => child.on("exit", (code, sig) => r(code ?? (sig ? -1 : null))));
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (l) => {
      try {
        const rec = JSON.parse(l);
        this.logs.push(rec);
        if (rec.msg?.startsWith("serving /healthz")) this.healthPort = rec.port;
        if (rec.msg === "serving the CA endpoint over HTTPS") this.securePort = rec.port;
      } catch {
        this.logs.push({ raw: l });
      }
    });
    child.stderr!.on("data", (d) => this.logs.push({ stderr: String(d) }));
  }

  static async start(opts: { kubeconfig: string; namespace: string; identity: string; env?: Record<string, string> }) {
    const child = spawn(process.execPath, [built("build/operator/main.js")], {
      cwd: repoRoot,
      env: {
        ...process.env,
        KUBECONFIG: opts.kubeconfig,
        TENET_NAMESPACE: opts.namespace,
        POD_NAME: opts.identity,
        TENET_HEALTH_HOST: "127.0.0.1",
        TENET_HEALTH_PORT: "0",
        TENET_SECURE_HOST: "127.0.0.1",
        TENET_SECURE_PORT: "0",
        TENET_WEBHOOK_HOST: "127.0.0.1",
        TENET_LOG_LEVEL: "debug",
        TENET_LOG_FORMAT: "json",
        ...opts.env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const p = new OperatorProcess(opts.identity, child);
    await waitFor(`operator ${opts.identity} to sync its caches`, () => {
      if (child.exitCode !== null) throw new Error(`operator exited with ${child.exitCode}: ${p.dump()}`);
      return p.logs.some((l) => l.msg === "caches synced");
    }, 30_000);
    return p;
  }

  get pid() {
    return this.child.pid!;
  }

  get running() {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  hasLog(pred: (rec: any) => boolean) {
    return this.logs.some(pred);
  }

  /** The HTTPS endpoint starts once a CA is usable, which can be after the caches sync. */
  async waitForHTTPS(timeoutMs = 20_000) {
    await waitFor(`operator ${this.identity} to serve HTTPS`, () => this.securePort > 0, timeoutMs);
    return this.securePort;
  }

  waitForLog(what: string, pred: (rec: any) => boolean, timeoutMs = 20_000) {
    return waitFor(what, () => this.logs.find(pred), timeoutMs);
  }

  get isLeader() {
    return this.logs.some((l) => l.msg === "became leader");
  }

  /** Parses /metrics into "name{labels}" → value. */
  metrics(): Promise<Map<string, number>> {
    return fetchMetrics(this.healthPort);
  }

  /** Sum of a metric over all label sets that contain `labels` (e.g. `controller="apipolicy"`). */
  async metricSum(name: string, ...labels: string[]) {
    let sum = 0;
    for (const [k, v] of await this.metrics()) {
      if ((k === name || k.startsWith(`${name}{`)) && labels.every((l) => k.includes(l))) sum += v;
    }
    return sum;
  }

  async kill(signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    if (this.running) this.child.kill(signal);
    const code = await this.exited;
    live.delete(this);
    return code ?? null;
  }

  dump() {
    return this.logs.map((l) => JSON.stringify(l)).join("\n").slice(-4000);
  }
}

export async function killAllOperators() {
  await Promise.all([...live].map((p) => p.kill("SIGKILL")));
}
