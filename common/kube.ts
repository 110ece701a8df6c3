// A small REST client for the Kubernetes API on node:https. We use client-node only to
// load kubeconfigs: raw JSON keeps hot paths (informers, rescans) free of per-object
// deserialization, and every write states its patch type explicitly.
import https from "node:https";
import { createInterface } from "node:readline";
import { KubeConfig } from "@kubernetes/client-node";

/** An error answered by the API server (or the transport), with the server's own message. */
export class KubeError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = "KubeError";
  }
}

export const isNotFound = (e: unknown) => e instanceof KubeError && e.code === 404;
export const isConflict = (e: unknown) => e instanceof KubeError && e.code === 409;
export const isAlreadyExists = (e: unknown) => e instanceof KubeError && e.code === 409 && e.reason === "AlreadyExists";
export const isGone = (e: unknown) => e instanceof KubeError && e.code === 410;

/** Returned by a retryOnConflict attempt that wants another try without a conflict (e.g. it recreated the object). */
export const RETRY = Symbol("retry");

/**
 * Optimistic concurrency, the one way Tenet does it: runs `attempt` (a read-modify-write guarded
 * by resourceVersion) until it finishes without a 409 Conflict, at most `attempts` times (5);
 * any other error propagates at once. After the last conflict, throws Error(`exhausted`).
 */
export async function retryOnConflict<T>(attempt: (n: number) => Promise<T | typeof RETRY>, exhausted: string, attempts = 5): Promise<T> {
  for (let n = 0; n < attempts; n++) {
    try {
      const r = await attempt(n);
      if (r !== RETRY) return r as T;
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
  }
  throw new Error(exhausted);
}

export type PatchType = "merge" | "json" | "apply";
const patchContentType: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  apply: "application/apply-patch+yaml",
};

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface WatchEvent {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: any;
}

export interface ObjectList<T = any> {
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** Loads KUBECONFIG (or ~/.kube/config), falling back to the in-cluster service account. */
export function loadKubeConfig(path = process.env.KUBECONFIG): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}

export class Kube {
  private readonly server: URL;
  private readonly agent: https.Agent;
  private auth?: { at: number; opts: https.RequestOptions };

  constructor(private readonly kc: KubeConfig) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error("kubeconfig has no current cluster");
    this.server = new URL(cluster.server);
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 32 });
  }

  static fromEnv(): Kube {
    return new Kube(loadKubeConfig());
  }

  get serverURL(): string {
    return this.server.toString();
  }

  /** TLS material and headers; re-read every 30 s so rotated in-cluster tokens are picked up. */
  private async authOptions(): Promise<https.RequestOptions> {
    if (!this.auth || Date.now() - this.auth.at > 30_000) {
      const opts: https.RequestOptions = {};
      await this.kc.applyToHTTPSOptions(opts);
      this.auth = { at: Date.now(), opts };
    }
    return this.auth.opts;
  }

  private async open(method: string, path: string, o: RequestOptions) {
    const url = new URL(path, this.server);
    for (const [k, v] of Object.entries(o.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const auth = await this.authOptions();
    const payload = o.body === undefined ? undefined : typeof o.body === "string" ? o.body : JSON.stringify(o.body);
    const headers: Record<string, string> = { ...(auth.headers as Record<string, string>), accept: "application/json" };
    if (payload !== undefined) {
      headers["content-type"] = o.contentType ?? "application/json";
      headers["content-length"] = String(Buffer.byteLength(payload));
    }
    return new Promise<import("node:http").IncomingMessage>((resolve, reject) => {
      const req = https.request(
        url,
        { ...auth, method, headers, agent: this.agent, signal: o.signal, timeout: o.timeoutMs ?? 30_000 },
        resolve,
      );
      req.on("timeout", () => req.destroy(new KubeError(504, "Timeout", `${method} ${url.pathname}: no answer in ${o.timeoutMs ?? 30_000} ms`)));
      req.on("error", (e) =>
        reject(e instanceof KubeError ? e : new KubeError(0, "TransportError", `${method} ${url.pathname}: ${e.message}`)),
      );
      req.end(payload);
    });
  }

  async request<T = any>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
    const res = await this.open(method, path, o);
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return (text ? JSON.parse(text) : undefined) as T;
    throw toKubeError(status, text, `${method} ${path}`);
  }

  get<T = any>(path: string, query?: RequestOptions["query"]) {
    return this.request<T>("GET", path, { query });
  }
  create<T = any>(path: string, body: unknown, query?: RequestOptions["query"]) {
    return this.request<T>("POST", path, { body, query });
  }
  replace<T = any>(path: string, body: unknown) {
    return this.request<T>("PUT", path, { body });
  }
  delete<T = any>(path: string, query?: RequestOptions["query"]) {
    return this.request<T>("DELETE", path, { query });
  }
  patch<T = any>(path: string, type: PatchType, body: unknown, query?: RequestOptions["query"]) {
    return this.request<T>("PATCH", path, { body, contentType: patchContentType[type], query });
  }
  /** Server-side apply with a stable field manager; `force` takes ownership from other managers. */
  apply<T = any>(path: string, body: unknown, fieldManager: string, force = true) {
    return this.patch<T>(path, "apply", body, { fieldManager, force });
  }

  /** Lists every page of a collection. */
  async list<T = any>(path: string, query: RequestOptions["query"] = {}, pageSize = 500): Promise<ObjectList<T>> {
    const items: T[] = [];
    const { resourceVersion } = await this.listPages<T>(path, query, (page) => void items.push(...page), pageSize);
    return { metadata: { resourceVersion }, items };
  }

  /** Lists a collection a page at a time: `onPage` gets each page's items, which the caller can
   * reduce and drop, so a large collection is never held raw all at once (informer relists). */
  async listPages<T = any>(path: string, query: RequestOptions["query"], onPage: (items: T[]) => void, pageSize = 500): Promise<{ resourceVersion?: string }> {
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const page = await this.get<ObjectList<T>>(path, { ...(query ?? {}), limit: pageSize, continue: cont });
      onPage(page.items ?? []);
      cont = page.metadata?.continue || undefined;
      resourceVersion = page.metadata?.resourceVersion;
    } while (cont);
    return { resourceVersion };
  }

  /**
   * Streams watch events until the server ends the watch (resolves) or the stream fails
   * (rejects); `onOpen` is called once the server has accepted the watch (HTTP 200). An ERROR event carrying a Status is turned into a rejection, so callers
   * see 410 Gone as a KubeError.
   */
  async watch(path: string, query: RequestOptions["query"], onEvent: (e: WatchEvent) => void, signal: AbortSignal, onOpen?: () => void) {
    const res = await this.open("GET", path, { query: { ...query, watch: true }, signal, timeoutMs: 0 });
    if (res.statusCode !== 200) {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      throw toKubeError(res.statusCode ?? 0, Buffer.concat(chunks).toString("utf8"), `WATCH ${path}`);
    }
    // The server accepted the watch (informers count this as recovered).
    onOpen?.();
    const lines = createInterface({ input: res, crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (!line) continue;
        const event = JSON.parse(line) as WatchEvent;
        if (event.type === "ERROR") {
          const s = event.object ?? {};
          throw new KubeError(s.code ?? 500, s.reason ?? "WatchError", `WATCH ${path}: ${s.message ?? "error event"}`);
        }
        onEvent(event);
      }
    } finally {
      res.destroy();
    }
  }
}

function toKubeError(status: number, text: string, what: string): KubeError {
  // The API server answers errors with a metav1.Status; show its message, not the raw body.
  try {
    const s = JSON.parse(text);
    if (s && s.kind === "Status") return new KubeError(s.code ?? status, s.reason ?? "", `${what}: ${s.message}`);
  } catch {
    /* not JSON */
  }
  return new KubeError(status, "", `${what}: HTTP ${status} ${text.slice(0, 200)}`);
}

/** Path helpers so callers never concatenate URLs by hand. */
export function resourcePath(r: { group?: string; version: string; plural: string }, namespace?: string, name?: string, sub?: string) {
  let p = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  if (namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${r.plural}`;
  if (name) p += `/${encodeURIComponent(name)}`;
  if (sub) p += `/${sub}`;
  return p;
}

export const Resources = {
  pods: { version: "v1", plural: "pods" },
  namespaces: { version: "v1", plural: "namespaces" },
  serviceAccounts: { version: "v1", plural: "serviceaccounts" },
  events: { version: "v1", plural: "events" },
  secrets: { version: "v1", plural: "secrets" },
  configMaps: { version: "v1", plural: "configmaps" },
  services: { version: "v1", plural: "services" },
  endpointSlices: { group: "discovery.k8s.io", version: "v1", plural: "endpointslices" },
  leases: { group: "coordination.k8s.io", version: "v1", plural: "leases" },
  serviceIdentities: { group: "tenet.dev", version: "v1alpha1", plural: "serviceidentities" },
  apiPolicies: { group: "tenet.dev", version: "v1alpha1", plural: "apipolicies" },
  runtimeRules: { group: "tenet.dev", version: "v1alpha1", plural: "runtimerules" },
  incidents: { group: "tenet.dev", version: "v1alpha1", plural: "incidents" },
  policyReports: { group: "wgpolicyk8s.io", version: "v1alpha2", plural: "policyreports" },
} as const;
