// The enforcer's calls to the operator over HTTPS, trusting only the serving CA bundle
// (OperatorTrust: operator-ca.crt, never the workload CA that signs peers) and only a server
// certificate for the host it dialled that carries the operator's SPIFFE ID: conditional GETs
// (ETag / If-None-Match) for the bundle, revocation list and policy, and the CSR POST. Tokens
// go in the Authorization header only and never into an error message.
import https from "node:https";
import tls, { type PeerCertificate } from "node:tls";
import { readFile } from "node:fs/promises";
import { pemEncode, splitPEM } from "../pki/pem.ts";

/** The operator's serving certificate must carry this kind of SPIFFE ID (its ServiceAccount, tenet-operator). */
const OPERATOR_ID = /^spiffe:\/\/[^/]+\/ns\/[a-z0-9]([-a-z0-9]*[a-z0-9])?\/sa\/tenet-operator$/;

/**
 * Why `cert` is not the operator's serving certificate for `host`, or undefined: the host name
 * (or IP) must be in its SANs (Node's own check) and its one URI SAN must be the operator's
 * SPIFFE ID (`expected`, or any …/ns/<ns>/sa/tenet-operator).
 */
export function operatorIdentityProblem(host: string, cert: PeerCertificate, expected?: string): Error | undefined {
  const hostProblem = tls.checkServerIdentity(host, cert);
  if (hostProblem) return hostProblem;
  const uris = (cert.subjectaltname ?? "").split(/,\s*/).filter((s) => s.startsWith("URI:")).map((s) => s.slice(4));
  const ok = uris.length === 1 && (expected ? uris[0] === expected : OPERATOR_ID.test(uris[0]));
  if (!ok) return new Error(`the server's certificate is not the operator's: URI SANs [${uris.join(", ").slice(0, 300)}], expected ${expected ?? "spiffe://<trust-domain>/ns/<namespace>/sa/tenet-operator"}`);
  return undefined;
}

/**
 * The serving CA bundle from its file (operator-ca.crt in the trust-bundle ConfigMap volume),
 * re-read on every refresh so a serving CA rotation reaches the enforcer; a failed read keeps
 * the last good bundle.
 */
export class OperatorTrust {
  private pem?: string;
  constructor(readonly file: string | undefined) {}

  get bundle(): string | undefined {
    return this.pem;
  }

  async refresh(): Promise<void> {
    if (!this.file) return;
    const blocks = splitPEM(await readFile(this.file, "utf8"));
    if (blocks.length === 0) throw new Error(`${this.file} holds no CERTIFICATE block`);
    this.pem = blocks.map((b) => pemEncode("CERTIFICATE", b)).join("");
  }
}

export interface Fetched {
  status: number;
  etag?: string;
  body: string;
}

export class OperatorError extends Error {
  override name = "OperatorError";
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export class OperatorClient {
  /**
   * One agent per client, so the TLS sessions of its earlier requests (the policy and trust polls
   * every few seconds) are resumed: a renewal skips the certificate exchange on both ends. Node
   * keys cached sessions by the agent name, which includes the CA bundle (a serving-CA rotation
   * starts afresh), drops a session whose connection failed, and skips checkServerIdentity on a
   * resumed session — so the check lives on the agent (Node resumes nothing for a per-request
   * check): every session in this cache comes from a full handshake that passed it.
   */
  private readonly agent: https.Agent;
  /** The trust bundle parsed once per bundle, not on every request. */
  private context?: { ca: string; secureContext: tls.SecureContext };

  constructor(
    private readonly trust: () => string | undefined,
    private readonly tokenFile: string,
    private readonly timeoutMs = 10_000,
    /** The operator's SPIFFE ID when known exactly (TENET_OPERATOR_SPIFFE_ID). */
    private readonly operatorSpiffeID?: string,
  ) {
    this.agent = new https.Agent({ keepAlive: false, maxCachedSessions: 4, checkServerIdentity: (host, cert) => operatorIdentityProblem(host, cert, operatorSpiffeID) });
  }

  /** The projected token, re-read every time: the kubelet rotates the file. */
  async token(): Promise<string> {
    try {
      const t = (await readFile(this.tokenFile, "utf8")).trim();
      if (!t) throw new Error("the file is empty");
      return t;
    } catch (err) {
      throw new OperatorError(0, "TokenUnreadable", `cannot read the projected service-account token at ${this.tokenFile}: ${(err as Error).message}`);
    }
  }

  async get(url: string, opts: { etag?: string; auth?: boolean } = {}): Promise<Fetched> {
    const headers: Record<string, string> = { accept: "application/json, application/x-pem-file" };
    if (opts.etag) headers["if-none-match"] = opts.etag;
    if (opts.auth) headers.authorization = `Bearer ${await this.token()}`;
    return this.request("GET", url, headers);
  }

  async post(url: string, body: unknown): Promise<Fetched> {
    const headers = { "content-type": "application/json", authorization: `Bearer ${await this.token()}` };
    return this.request("POST", url, headers, JSON.stringify(body));
  }

  private request(method: string, url: string, headers: Record<string, string>, body?: string): Promise<Fetched> {
    const ca = this.trust();
    if (!ca) return Promise.reject(new OperatorError(0, "NoTrustBundle", "no serving CA bundle (operator-ca.crt) yet: cannot verify the operator"));
    if (this.context?.ca !== ca) this.context = { ca, secureContext: tls.createSecureContext({ ca, minVersion: "TLSv1.2" }) };
    // `ca` stays in the options too: it names the agent's session cache.
    const options: https.RequestOptions & tls.ConnectionOptions = { method, headers, ca, secureContext: this.context.secureContext, agent: this.agent, timeout: this.timeoutMs, minVersion: "TLSv1.2" };
    return new Promise((resolve, reject) => {
      const req = https.request(url, options, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > 8 * 1024 * 1024) req.destroy(new Error(`${method} ${url}: response larger than 8 MiB`));
          else chunks.push(c);
        });
        res.on("end", () => {
          const etag = res.headers.etag;
          resolve({ status: res.statusCode ?? 0, etag: typeof etag === "string" ? etag : undefined, body: Buffer.concat(chunks).toString("utf8") });
        });
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error(`${method} ${url}: no answer within ${this.timeoutMs} ms`)));
      req.on("error", (err) => reject(new OperatorError(0, "OperatorUnreachable", `${method} ${url}: ${err.message}`)));
      req.end(body);
    });
  }
}

/** The operator's error body {"error": {"reason", "message"}} as an OperatorError. */
export function operatorError(what: string, res: Fetched): OperatorError {
  try {
    const e = JSON.parse(res.body)?.error;
    if (e?.reason) return new OperatorError(res.status, String(e.reason), `${what}: ${res.status} ${e.reason}: ${String(e.message ?? "").slice(0, 500)}`);
  } catch {
    // not JSON: fall through
  }
  return new OperatorError(res.status, `HTTP${res.status}`, `${what}: HTTP ${res.status}: ${res.body.slice(0, 200)}`);
}
