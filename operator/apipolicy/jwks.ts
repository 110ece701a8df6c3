// The JWKS of the issuers APIPolicy rules name by jwksURI, fetched by the operator (never by
// enforcers on the request path) and put into the workloads' PolicyDocuments. Refreshed on a
// timer; a failed fetch keeps the last good key set; a change tells the caller.
//
// Whoever may create an APIPolicy chooses the URL, and the operator fetches it from inside the
// cluster: so only hosts an administrator lists (TENET_JWKS_ALLOWED_HOSTS) are fetched — none by
// default — over https, without redirects, within a timeout, and the body is cut off while it
// streams once it passes maxBytes. Why a URL is not fetched is reported (problem(uri)) in the
// APIPolicy's JWKSFetched condition.
import type { Logger } from "../../common/logger.ts";
import { clip } from "../../common/bounded.ts";
import { jwksProblem } from "../../policy/authz.ts";

export interface JWKSFetcherOptions {
  refreshMs?: number;
  timeoutMs?: number;
  maxBytes?: number;
  fetch?: typeof fetch;
  /** Hosts the operator may fetch from: "login.example.com", "idp.example.com:8443", "*.example.com". Empty: none. */
  allowedHosts?: string[];
}

/** Why a URL is not fetched: the reason goes to the JWKSFetched condition. */
export class JWKSFetchError extends Error {
  constructor(
    readonly reason: "JWKSHostNotAllowed" | "JWKSFetchFailed",
    message: string,
  ) {
    super(message);
  }
}

/** True when `url`'s host (and port, when the entry names one) is on the allow-list. */
export function hostAllowed(url: URL, allowed: readonly string[]): boolean {
  const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, "");
  const port = url.port || "443";
  return allowed.some((raw) => {
    const entry = raw.trim().toLowerCase();
    if (!entry) return false;
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(entry);
    if (!m) return false;
    const eh = m[1].replace(/^\[|\]$/g, "");
    if ((m[2] ?? "443") !== port) return false; // no port in the entry: 443 only
    if (eh.startsWith("*.")) return host.endsWith(eh.slice(1)) && host.length > eh.length - 1;
    return host === eh;
  });
}

export class JWKSFetcher {
  private entries = new Map<string, { text?: string; fetchedAt: number; inflight?: Promise<void>; lastError?: string; reason?: JWKSFetchError["reason"] }>();
  private readonly allowedHosts: string[];
  private timer?: NodeJS.Timeout;
  private readonly refreshMs: number;
  private readonly timeoutMs: number;
  private readonly maxBytes: number;
  private readonly fetchFn: typeof fetch;

  constructor(
    private readonly log: Logger,
    private readonly onChange: (uri: string) => void,
    opts: JWKSFetcherOptions = {},
  ) {
    this.refreshMs = opts.refreshMs ?? 5 * 60_000;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.maxBytes = opts.maxBytes ?? 64 * 1024;
    this.fetchFn = opts.fetch ?? fetch;
    this.allowedHosts = opts.allowedHosts ?? [];
    this.timer = setInterval(() => this.refreshAll(), Math.max(1000, this.refreshMs / 5));
    this.timer.unref();
  }

  /** The cached key set for `uri`; starts a fetch (in the background) the first time it is asked for. */
  get = (uri: string): string | undefined => {
    let e = this.entries.get(uri);
    if (!e) {
      e = { fetchedAt: 0 };
      this.entries.set(uri, e);
      this.refresh(uri);
    }
    return e.text;
  };

  /** Why the key set of `uri` is not (or no longer) fetched; undefined when the last fetch worked or none finished yet. */
  problem(uri: string): { reason: JWKSFetchError["reason"]; message: string } | undefined {
    const e = this.entries.get(uri);
    return e?.lastError ? { reason: e.reason ?? "JWKSFetchFailed", message: e.lastError } : undefined;
  }

  /** Drops URIs no policy names any more. */
  retain(uris: Set<string>) {
    for (const uri of this.entries.keys()) if (!uris.has(uri)) this.entries.delete(uri);
  }

  private refreshAll() {
    const now = Date.now();
    for (const [uri, e] of this.entries) {
      // Retry failures sooner than the refresh period.
      const due = e.text === undefined ? 10_000 : this.refreshMs;
      if (!e.inflight && now - e.fetchedAt >= due) this.refresh(uri);
    }
  }

  private refresh(uri: string) {
    const e = this.entries.get(uri);
    if (!e || e.inflight) return;
    e.inflight = this.fetchOne(uri)
      .then((text) => {
        const recovered = e.lastError !== undefined;
        e.lastError = undefined;
        e.reason = undefined;
        if (text !== e.text) {
          e.text = text;
          this.log.info({ uri: clip(uri, 512) }, "JWKS fetched for APIPolicy rules");
          this.onChange(uri);
        } else if (recovered) this.onChange(uri);
      })
      .catch((err) => {
        const msg = clip((err as Error).message, 512)!;
        const changed = msg !== e.lastError;
        if (changed) this.log.warn({ uri: clip(uri, 512), err: msg }, "could not fetch the JWKS named by an APIPolicy rule; enforcers keep the last good keys (or fetch them themselves)");
        e.lastError = msg;
        e.reason = err instanceof JWKSFetchError ? err.reason : "JWKSFetchFailed";
        // The APIPolicy status says why: re-evaluate the policies that name this URI.
        if (changed) this.onChange(uri);
      })
      .finally(() => {
        e.fetchedAt = Date.now();
        e.inflight = undefined;
      });
  }

  private async fetchOne(uri: string): Promise<string> {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new JWKSFetchError("JWKSFetchFailed", `${clip(uri, 256)}: not a URL`);
    }
    const shown = clip(uri, 256);
    if (url.protocol !== "https:") throw new JWKSFetchError("JWKSFetchFailed", `${shown}: only https is fetched`);
    if (url.username || url.password) throw new JWKSFetchError("JWKSFetchFailed", `${shown}: credentials in the URL are not allowed`);
    if (!hostAllowed(url, this.allowedHosts)) {
      throw new JWKSFetchError(
        "JWKSHostNotAllowed",
        `${shown}: host ${url.host} is not in the operator's TENET_JWKS_ALLOWED_HOSTS (${this.allowedHosts.join(", ") || "empty: the operator fetches no jwksURI"}); ask an administrator to allow it, or paste the keys into jwt.jwks`,
      );
    }
    const signal = AbortSignal.timeout(this.timeoutMs);
    let text: string;
    try {
      const res = await this.fetchFn(url, { signal, redirect: "error", headers: { accept: "application/jwk-set+json, application/json" } });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      text = await readCapped(res, this.maxBytes);
    } catch (err) {
      const why = signal.aborted ? `no complete answer within ${this.timeoutMs} ms` : (err as Error).message;
      throw new JWKSFetchError("JWKSFetchFailed", `${shown}: ${why}`);
    }
    const why = jwksProblem(text);
    if (why) throw new JWKSFetchError("JWKSFetchFailed", `${shown}: the key set ${why}`);
    // Canonical form: the same keys served with different whitespace are the same version.
    return JSON.stringify({ keys: JSON.parse(text).keys });
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
  }
}

/** The body as text, refused (and the download cancelled) as soon as it passes `maxBytes`. */
async function readCapped(res: Response, maxBytes: number): Promise<string> {
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (declared > maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw new Error(`the key set is larger than ${maxBytes} bytes (content-length ${declared})`);
  }
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new Error(`the key set is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}
