// The JWKS of the issuers APIPolicy rules name by jwksURI, fetched by the operator (never by
// enforcers on the request path) and put into the workloads' PolicyDocuments. Refreshed on a
// timer; a failed fetch keeps the last good key set; a change tells the caller.
import type { Logger } from "../../common/logger.ts";
import { jwksProblem } from "../../policy/authz.ts";

export interface JWKSFetcherOptions {
  refreshMs?: number;
  timeoutMs?: number;
  maxBytes?: number;
  fetch?: typeof fetch;
}

export class JWKSFetcher {
  private entries = new Map<string, { text?: string; fetchedAt: number; inflight?: Promise<void>; lastError?: string }>();
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
        e.lastError = undefined;
        if (text !== e.text) {
          e.text = text;
          this.log.info({ uri }, "JWKS fetched for APIPolicy rules");
          this.onChange(uri);
        }
      })
      .catch((err) => {
        const msg = (err as Error).message;
        if (msg !== e.lastError) this.log.warn({ uri, err: msg }, "could not fetch the JWKS named by an APIPolicy rule; enforcers keep the last good keys (or fetch them themselves)");
        e.lastError = msg;
      })
      .finally(() => {
        e.fetchedAt = Date.now();
        e.inflight = undefined;
      });
  }

  private async fetchOne(uri: string): Promise<string> {
    const url = new URL(uri);
    if (url.protocol !== "https:") throw new Error(`${uri}: only https is fetched`);
    const res = await this.fetchFn(url, { signal: AbortSignal.timeout(this.timeoutMs), redirect: "error", headers: { accept: "application/jwk-set+json, application/json" } });
    if (!res.ok) throw new Error(`${uri}: HTTP ${res.status}`);
    const text = await res.text();
    if (text.length > this.maxBytes) throw new Error(`${uri}: the key set is larger than ${this.maxBytes} bytes`);
    const why = jwksProblem(text);
    if (why) throw new Error(`${uri}: the key set ${why}`);
    // Canonical form: the same keys served with different whitespace are the same version.
    return JSON.stringify({ keys: JSON.parse(text).keys });
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
  }
}
