// SPIFFE ID rules (SPIFFE-ID.md, X509-SVID §3.1) and the IDs Tenet gives workloads.

/** The SPIFFE ID of a workload: spiffe://<trust domain>/ns/<namespace>/sa/<service account>. */
export const spiffeID = (trustDomain: string, namespace: string, serviceAccount: string) =>
  `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;

/** Problems with a SPIFFE ID as a leaf identity (SPIFFE-ID.md, X509-SVID §3.1); [] when valid. */
export function spiffeIDProblems(id: string): string[] {
  if (id.length <= 2048 && SPIFFE_ID_COMMON.test(id) && !DOT_SEGMENT.test(id)) return [];
  const p: string[] = [];
  if (Buffer.byteLength(id) > 2048) p.push("is longer than 2048 bytes");
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/.exec(id);
  if (!m) return [...p, "is not a URI of the form spiffe://<trust-domain>/<path>"];
  const [, scheme, authority, path, query, fragment] = m;
  if (scheme !== "spiffe") p.push(`has scheme "${scheme}", not "spiffe"`);
  if (authority === "") p.push("has an empty trust domain");
  else if (/[@:]/.test(authority)) p.push("has userinfo or a port in its trust domain");
  else if (!/^[a-z0-9._-]+$/.test(authority)) p.push(`has trust domain "${authority}" with characters other than lowercase letters, digits, '.', '-', '_'`);
  if (query !== undefined) p.push("has a query");
  if (fragment !== undefined) p.push("has a fragment");
  if (path === "" || path === "/") p.push("has no path (a trust-domain ID cannot name a workload)");
  else {
    const segs = path.split("/").slice(1);
    if (segs.some((s) => s === "")) p.push(path.endsWith("/") ? "has a trailing '/'" : "has an empty path segment");
    if (segs.some((s) => s === "." || s === "..")) p.push("has a '.' or '..' path segment");
    if (segs.some((s) => s !== "" && !/^[A-Za-z0-9._-]+$/.test(s))) p.push("has path characters other than letters, digits, '.', '-', '_'");
  }
  return p;
}

/** The shape of every valid leaf SPIFFE ID (ASCII only, so length is bytes); the slow path explains failures. */
const SPIFFE_ID_COMMON = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._-]+)+$/;
const DOT_SEGMENT = /\/\.\.?(\/|$)/;
