// Header handling shared by both proxies: drop hop-by-hop headers (RFC 9110 §7.6.1, plus those
// the Connection header names) and Tenet's own caller header, working on rawHeaders arrays so
// nothing is re-parsed or re-cased.

export const CALLER_HEADER = "x-tenet-caller";

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", CALLER_HEADER]);

/**
 * Request headers a caller could use to make the app route or dispatch differently from what the
 * enforcer authorized: path overrides that IIS, Symfony, Laminas, nginx setups and some Spring
 * filters honour (X-Original-URL, X-Rewrite-URL, ...), the prefix Spring's ForwardedHeaderFilter
 * prepends (X-Forwarded-Prefix), and method overrides (X-HTTP-Method-Override, ...) that turn an
 * authorized GET into a DELETE. A peer is not a trusted proxy, so the inbound listener drops them.
 * X-Forwarded-For/-Host/-Proto pass unchanged: they change neither path nor method, and the caller's
 * identity is x-tenet-caller, never a forwarded header (docs/security.md).
 */
export const REQUEST_OVERRIDE_HEADERS: ReadonlySet<string> = new Set([
  "x-original-url",
  "x-rewrite-url",
  "x-original-uri",
  "x-forwarded-uri",
  "x-forwarded-path",
  "x-forwarded-prefix",
  "x-envoy-original-path",
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
]);

/** rawHeaders without hop-by-hop headers, x-tenet-caller and any `drop` header; extra pairs appended. */
export function forwardHeaders(raw: string[], extra?: [string, string], drop?: ReadonlySet<string>): string[] {
  let named: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 10 && raw[i].toLowerCase() === "connection") {
      for (const t of raw[i + 1].split(",")) {
        const n = t.trim().toLowerCase();
        if (n) (named ??= new Set()).add(n);
      }
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i].toLowerCase();
    if (HOP_BY_HOP.has(k) || named?.has(k) || drop?.has(k)) continue;
    out.push(raw[i], raw[i + 1]);
  }
  if (extra) out.push(extra[0], extra[1]);
  return out;
}

/** The SPIFFE ID's namespace for spiffe://<td>/ns/<ns>/sa/<sa>; undefined for other shapes. */
export function spiffeNamespace(id: string): string | undefined {
  const m = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/[^/]+$/.exec(id);
  return m?.[1];
}

/** The URI SAN from Node's `subjectaltname` string ("URI:spiffe://…, DNS:…"). */
export function spiffeFromAltNames(altnames: string | undefined): string | undefined {
  if (!altnames) return undefined;
  const uris = altnames.split(", ").filter((s) => s.startsWith("URI:")).map((s) => s.slice(4));
  return uris.length === 1 && uris[0].startsWith("spiffe://") ? uris[0] : undefined;
}

/**
 * An absolute-form proxy target "http://host[:port]/path?query" split into parts without a URL
 * object (hot path). undefined when it is not absolute-form http.
 */
export function parseProxyTarget(url: string): { host: string; port: number; path: string } | undefined {
  if (url.length < 8 || url.slice(0, 7).toLowerCase() !== "http://") return undefined;
  let end = url.indexOf("/", 7);
  const q = url.indexOf("?", 7);
  if (q >= 0 && (end < 0 || q < end)) end = q;
  const authority = url.slice(7, end < 0 ? url.length : end);
  if (!authority || authority.includes("@")) return undefined;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9._-]+))(?::([0-9]{1,5}))?$/.exec(authority);
  if (!m) return undefined;
  const port = m[3] === undefined ? 80 : Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  let path = end < 0 ? "/" : url.slice(end);
  if (path.startsWith("?")) path = "/" + path;
  return { host: (m[1] ?? m[2]).toLowerCase(), port, path };
}
