// APIPolicy compile + evaluate: the operator builds one workload's PolicyDocument, the enforcer
// compiles it once per version and authorizes every request against it. Pure apart from JWKS
// fetches for rules that name a jwksURI.
import { createHash } from "node:crypto";
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
} from "jose";
import type { APIPolicy, APIPolicyPeer, APIPolicyRule, APIPolicyRuleJwt, APIPolicySpec } from "../crds/types.gen.ts";
import type { AuthzRequest, Caller, Decision, PolicyDocument } from "./authz-contract.ts";
import { selectorMatcher } from "./selector.ts";
import { bearerToken } from "../common/http.ts";

export type { AuthzRequest, Caller, Decision, PolicyDocument } from "./authz-contract.ts";

/** Asymmetric algorithms only: HS* (a shared secret) and "none" can never verify against a public JWKS. */
export const DEFAULT_JWT_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"];

export const Reasons = {
  Allowed: "Allowed",
  Unprotected: "Unprotected",
  BadPath: "BadPath",
  NoMatchingAPI: "NoMatchingAPI",
  MethodNotAllowed: "MethodNotAllowed",
  NoRuleAllows: "NoRuleAllows",
  DeniedByRule: "DeniedByRule",
  Unauthenticated: "Unauthenticated",
  JWTMissing: "JWTMissing",
  JWTInvalid: "JWTInvalid",
} as const;

// ---- the document ---------------------------------------------------------------------------

/** JSON with object keys sorted, so equal content always hashes equal. */
export function canonicalJSON(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJSON).join(",")}]`;
  if (v && typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJSON(x)}`).join(",")}}`;
  }
  return JSON.stringify(v ?? null);
}

const hash16 = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 16);

/** Version of one APIPolicy's spec (APIPolicy status.compiledVersion). */
export function specVersion(spec: APIPolicySpec): string {
  return hash16(canonicalJSON(spec));
}

/** The APIPolicies of `namespace` whose selector matches the pod's labels, sorted, versioned by content. */
export function policyDocument(
  namespace: string,
  podLabels: Record<string, string> | undefined,
  policies: APIPolicy[],
  /** Cached JWKS text for a jwksURI (the operator's fetcher), if any. */
  jwks?: (uri: string) => string | undefined,
): PolicyDocument {
  const selected: PolicyDocument["policies"] = [];
  for (const p of policies) {
    if (p.metadata.namespace !== namespace || p.metadata.deletionTimestamp) continue;
    // A selector that does not compile selects nothing; the APIPolicy controller reports it.
    if (selectorMatcher(p.spec?.selector).matches(podLabels)) selected.push({ namespace, name: p.metadata.name!, spec: p.spec });
  }
  selected.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (!selected.length) return { version: "empty", policies: selected };
  const keys: Record<string, string> = {};
  if (jwks) {
    for (const uri of jwksURIs(selected.map((p) => p.spec))) {
      const text = jwks(uri);
      if (text !== undefined) keys[uri] = text;
    }
  }
  if (Object.keys(keys).length === 0) return { version: hash16(canonicalJSON(selected)), policies: selected };
  return { version: hash16(canonicalJSON({ jwks: keys, policies: selected })), policies: selected, jwks: keys };
}

/** Every jwksURI the rules of these specs name. */
export function jwksURIs(specs: APIPolicySpec[]): Set<string> {
  const out = new Set<string>();
  for (const s of specs) for (const r of s.rules ?? []) if (r.jwt?.jwksURI) out.add(r.jwt.jwksURI);
  return out;
}

/** Why a JWKS document (JSON text) is unusable, or undefined when it has at least one public key. */
export function jwksProblem(text: string): string | undefined {
  let doc: any;
  try {
    doc = JSON.parse(text);
  } catch {
    return "is not valid JSON";
  }
  if (!doc || !Array.isArray(doc.keys) || doc.keys.length === 0) return 'has no "keys" array with at least one key';
  const bad = doc.keys.findIndex((k: any) => !k || typeof k.kty !== "string");
  if (bad >= 0) return `keys[${bad}] has no "kty"`;
  if (!doc.keys.some((k: any) => k.kty !== "oct")) return "has only symmetric (oct) keys";
  return undefined;
}

// ---- paths ----------------------------------------------------------------------------------

export type NormalizedPath = { ok: true; path: string; segments: string[] } | { ok: false; message: string };

/**
 * The path a decision is made on: query and fragment dropped, each segment percent-decoded once,
 * `.` and `..` resolved, empty segments (`//`) and a trailing slash dropped. Anything that could
 * mean different paths to the enforcer and the app is refused: `;` (path parameters, literal or
 * encoded), encoded `/` or `\`, a literal `\`,
 * NUL and control characters, a `%` left after decoding (double encoding), invalid UTF-8, and
 * `..` above the root.
 */
export function normalizePath(raw: string): NormalizedPath {
  let p = raw;
  const cut = p.search(/[?#]/);
  if (cut >= 0) p = p.slice(0, cut);
  if (!p.startsWith("/")) return { ok: false, message: "the request target must be an absolute path starting with /" };
  const out: string[] = [];
  for (const rawSeg of p.split("/")) {
    if (rawSeg === "") continue;
    if (rawSeg.includes("\\")) return { ok: false, message: "the path contains a backslash" };
    // Path parameters: Tomcat, Jetty and Spring drop ";..." from each segment, so "/a/..;/b" is
    // "/b" and "/admin;x/keys" is "/admin/keys" to them. Refused rather than guessed at.
    if (rawSeg.includes(";") || /%3b/i.test(rawSeg)) return { ok: false, message: "the path contains ';' (a path parameter, which Tomcat and Spring strip: /a/..;/b reads as /b)" };
    if (/%(2f|5c|00|25)/i.test(rawSeg)) return { ok: false, message: "the path contains an encoded '/', '\\', '%' or NUL" };
    let seg: string;
    try {
      seg = rawSeg.includes("%") ? decodeURIComponent(rawSeg) : rawSeg;
    } catch {
      return { ok: false, message: "the path has an invalid percent-encoding or invalid UTF-8" };
    }
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(seg)) return { ok: false, message: "the path contains a control character" };
    if (seg === ".") continue;
    if (seg === "..") {
      if (out.length === 0) return { ok: false, message: "the path climbs above the root with '..'" };
      out.pop();
      continue;
    }
    out.push(seg);
  }
  return { ok: true, path: "/" + out.join("/"), segments: out };
}

/** Compiles a path pattern (validated by the APIPolicy controller); undefined when unusable. */
function compilePattern(pattern: string): { match: (segs: string[]) => boolean; key1?: string; key2?: string } | undefined {
  if (!pattern.startsWith("/")) return undefined;
  const parts = pattern.split("/").filter((s) => s !== "");
  const rest = parts[parts.length - 1] === "**";
  if (rest) parts.pop();
  if (parts.some((s) => s === "." || s === ".." || s === "**" || (s !== "*" && s.includes("*")))) return undefined;
  const n = parts.length;
  const literal = (i: number) => i < n && parts[i] !== "*";
  return {
    key1: literal(0) && !literal(1) ? parts[0] : undefined,
    key2: literal(0) && literal(1) ? `${parts[0]}/${parts[1]}` : undefined,
    match: (segs) => {
      if (rest ? segs.length < n : segs.length !== n) return false;
      for (let i = 0; i < n; i++) if (parts[i] !== "*" && parts[i] !== segs[i]) return false;
      return true;
    },
  };
}

// ---- compile --------------------------------------------------------------------------------

export interface CompileOptions {
  /** Clock for JWT exp/nbf/iat checks. */
  now?: () => Date;
  /** JWS algorithms accepted; intersected with DEFAULT_JWT_ALGORITHMS so HS* and none never pass. */
  algorithms?: string[];
  /** jwksURI fetches: timeout (default 5 s) and cooldown between refetches on an unknown kid (default 30 s). */
  jwksTimeoutMs?: number;
  jwksCooldownMs?: number;
  /** Replaces fetch for jwksURI (tests, proxies). */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
}

export interface CompiledPolicy {
  version: string;
  /** True when at least one APIPolicy applies: default deny. */
  protected: boolean;
  authorize(req: AuthzRequest): Promise<Decision>;
}

type PeerMatcher = (c: Caller, ns: string | undefined) => boolean;

interface CompiledRule {
  policy: string;
  mode: "enforce" | "audit";
  name: string;
  deny: boolean;
  /** undefined: every scope of the API. */
  scopes?: Set<string>;
  from: PeerMatcher;
  jwt?: (token: string | undefined) => Promise<JWTResult>;
}

interface CompiledAPI {
  index: number;
  policy: string;
  mode: "enforce" | "audit";
  name: string;
  methods: Map<string, string>;
  rules: CompiledRule[];
}

/** One path pattern of one API, filed under its literal prefix so a request only tries plausible ones. */
interface PatternEntry {
  api: CompiledAPI;
  match: (segs: string[]) => boolean;
}

type JWTResult = { ok: true } | { ok: false; reason: "JWTMissing" | "JWTInvalid"; message: string };

export function compilePolicy(doc: PolicyDocument, opts: CompileOptions = {}): CompiledPolicy {
  const algorithms = (opts.algorithms ?? DEFAULT_JWT_ALGORITHMS).filter((a) => DEFAULT_JWT_ALGORITHMS.includes(a));
  const remote = new Map<string, JWTVerifyGetKey>();
  const keySource = (jwt: APIPolicyRuleJwt): JWTVerifyGetKey | string => {
    const inline = jwt.jwks ?? (jwt.jwksURI ? doc.jwks?.[jwt.jwksURI] : undefined);
    if (inline !== undefined) {
      try {
        const set = JSON.parse(inline) as JSONWebKeySet;
        if (!set || !Array.isArray(set.keys)) return "the rule's JWKS has no keys array";
        // Public keys only: a symmetric ("oct") key would let anyone who reads the policy mint tokens.
        const keys = set.keys.filter((k) => k && k.kty !== "oct").map(({ d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub }: any) => pub);
        if (keys.length === 0) return "the rule's JWKS has no public keys";
        return createLocalJWKSet({ keys });
      } catch {
        return "the rule's JWKS is not valid JSON";
      }
    }
    if (jwt.jwksURI) {
      let getter = remote.get(jwt.jwksURI);
      if (!getter) {
        let url: URL;
        try {
          url = new URL(jwt.jwksURI);
        } catch {
          return "the policy's jwksURI is not a URL";
        }
        getter = createRemoteJWKSet(url, {
          timeoutDuration: opts.jwksTimeoutMs ?? 5000,
          cooldownDuration: opts.jwksCooldownMs ?? 30_000,
          ...(opts.fetch ? { [customFetch]: opts.fetch } : {}),
        });
        remote.set(jwt.jwksURI, getter);
      }
      return getter;
    }
    return "the policy's jwt names no key source (jwks or jwksURI)";
  };

  const apis: CompiledAPI[] = [];
  const byTwo = new Map<string, PatternEntry[]>();
  const byOne = new Map<string, PatternEntry[]>();
  const anyPrefix: PatternEntry[] = [];
  const file = (m: Map<string, PatternEntry[]>, k: string, e: PatternEntry) => {
    const l = m.get(k);
    if (l) l.push(e);
    else m.set(k, [e]);
  };
  for (const p of doc.policies) {
    const policy = `${p.namespace}/${p.name}`;
    const mode = p.spec.mode ?? "enforce";
    const byName = new Map<string, CompiledAPI>();
    for (const a of p.spec.apis ?? []) {
      const api: CompiledAPI = { index: apis.length, policy, mode, name: a.name, methods: new Map(Object.entries(a.methods ?? {})), rules: [] };
      for (const path of a.paths ?? []) {
        const c = compilePattern(path);
        if (!c) continue; // reported by the APIPolicy controller (InvalidPathPattern); matches nothing
        const e = { api, match: c.match };
        if (c.key2 !== undefined) file(byTwo, c.key2, e);
        else if (c.key1 !== undefined) file(byOne, c.key1, e);
        else anyPrefix.push(e);
      }
      byName.set(a.name, api);
      apis.push(api);
    }
    for (const r of p.spec.rules ?? []) {
      const from = compilePeers(r.from);
      const jwt = r.jwt ? compileJWT(r, keySource(r.jwt), algorithms, opts.now) : undefined;
      for (const to of r.to ?? []) {
        const api = byName.get(to.api);
        if (!api) continue; // reported by the APIPolicy controller (UnknownAPI); matches nothing
        api.rules.push({ policy, mode, name: r.name, deny: r.action === "deny", scopes: to.scopes?.length ? new Set(to.scopes) : undefined, from, jwt });
      }
    }
  }
  // Deny rules first within each API, so one pass finds an explicit deny before any allow.
  for (const a of apis) a.rules.sort((x, y) => Number(y.deny) - Number(x.deny));
  const anyEnforce = doc.policies.some((p) => (p.spec.mode ?? "enforce") === "enforce");
  const docMode = anyEnforce ? "enforce" : "audit";

  const authorize = async (req: AuthzRequest): Promise<Decision> => {
    if (doc.policies.length === 0) {
      return { forward: true, decision: "allow", status: 200, mode: "enforce", reason: Reasons.Unprotected, message: "no APIPolicy protects this workload" };
    }
    const norm = normalizePath(req.rawPath);
    if (!norm.ok) return deny(docMode, 400, Reasons.BadPath, norm.message, {});
    const path = norm.path;
    const method = req.method;

    const segs = norm.segments;
    const matched: CompiledAPI[] = [];
    const tryAll = (entries: PatternEntry[] | undefined) => {
      if (entries) for (const e of entries) if (!matched.includes(e.api) && e.match(segs)) matched.push(e.api);
    };
    if (segs.length >= 2) tryAll(byTwo.get(`${segs[0]}/${segs[1]}`));
    if (segs.length >= 1) tryAll(byOne.get(segs[0]));
    tryAll(anyPrefix);
    matched.sort((a, b) => a.index - b.index); // declaration order, whatever bucket matched
    const candidates: { api: CompiledAPI; scope: string }[] = [];
    for (const api of matched) {
      const scope = api.methods.get(method);
      if (scope !== undefined) candidates.push({ api, scope });
    }
    const pathMatched = matched.length > 0;
    if (candidates.length === 0) {
      if (pathMatched) return deny(docMode, 403, Reasons.MethodNotAllowed, `method ${safe(method)} is not declared for ${path}`, { path });
      return deny(docMode, 403, Reasons.NoMatchingAPI, `no declared API matches ${path}`, { path });
    }
    const mode = candidates.some((c) => c.api.mode === "enforce") ? "enforce" : "audit";
    const caller = req.caller;
    const token = bearerToken(req.authorization);
    const ns = caller ? (caller.namespace ?? namespaceOf(caller.spiffeID)) : undefined;

    let auditDeny: { rule: CompiledRule; api: string; scope: string } | undefined;
    let allow: { rule: CompiledRule; api: string; scope: string } | undefined;
    let jwtFailure: (JWTResult & { ok: false }) | undefined;
    for (const { api, scope } of candidates) {
      for (const rule of api.rules) {
        if (rule.scopes && !rule.scopes.has(scope)) continue;
        if (!rule.deny && (allow || auditDeny)) continue; // an allow is already found; only denies still matter
        // Audit policies observe; they never widen what an enforce policy protects.
        if (!rule.deny && mode === "enforce" && rule.mode !== "enforce") continue;
        if (!caller || !rule.from(caller, ns)) continue;
        if (rule.jwt) {
          const r = await rule.jwt(token);
          if (!r.ok) {
            if (!rule.deny) jwtFailure ??= r;
            continue;
          }
        }
        if (rule.deny) {
          if (rule.mode === "enforce") {
            return deny("enforce", 403, Reasons.DeniedByRule, `denied by rule ${rule.name} of APIPolicy ${rule.policy}`, { path, api: api.name, scope, policy: rule.policy, rule: rule.name });
          }
          auditDeny ??= { rule, api: api.name, scope };
        } else allow ??= { rule, api: api.name, scope };
      }
    }
    if (auditDeny) {
      const { rule } = auditDeny;
      return deny("audit", 403, Reasons.DeniedByRule, `denied by rule ${rule.name} of APIPolicy ${rule.policy}`, { path, api: auditDeny.api, scope: auditDeny.scope, policy: rule.policy, rule: rule.name });
    }
    if (allow) {
      const { rule } = allow;
      return { forward: true, decision: "allow", status: 200, mode: rule.mode, reason: Reasons.Allowed, message: `allowed by rule ${rule.name} of APIPolicy ${rule.policy}`, policy: rule.policy, rule: rule.name, api: allow.api, scope: allow.scope, path };
    }
    const first = candidates[0];
    const where = { path, api: first.api.name, scope: first.scope, policy: first.api.policy };
    if (!caller) return deny(mode, 403, Reasons.Unauthenticated, "the call did not come over mTLS, and every rule requires an authenticated caller", where);
    if (jwtFailure) return deny(mode, 401, jwtFailure.reason, jwtFailure.message, where);
    return deny(mode, 403, Reasons.NoRuleAllows, `no rule allows ${safe(caller.spiffeID)} to ${first.scope} API ${first.api.name}`, where);
  };

  return { version: doc.version, protected: doc.policies.length > 0, authorize };
}

function deny(mode: "enforce" | "audit", status: number, reason: string, message: string, extra: Partial<Decision>): Decision {
  return { forward: mode === "audit", decision: "deny", status, mode, reason, message, ...extra };
}

/** Caller-supplied text in a message: bounded and printable. */
const safe = (s: string) => s.replace(/[^\x20-\x7e]/g, "?").slice(0, 256);

export function namespaceOf(spiffeID: string): string | undefined {
  return /^spiffe:\/\/[^/]+\/ns\/([^/]+)\//.exec(spiffeID)?.[1];
}

function compilePeers(peers: APIPolicyPeer[] | undefined): PeerMatcher {
  if (!peers || peers.length === 0) return () => true; // any authenticated caller
  const compiled = peers.map((p) => {
    const ids = p.spiffeIDs?.length ? new Set(p.spiffeIDs) : undefined;
    const nss = p.namespaces?.length ? new Set(p.namespaces) : undefined;
    const attrs = (p.attributes ?? []).map((a) => {
      const values = new Set(a.values ?? []);
      switch (a.operator) {
        case "In":
          return (at: Record<string, string>) => Object.hasOwn(at, a.key) && values.has(at[a.key]);
        case "NotIn":
          return (at: Record<string, string>) => !Object.hasOwn(at, a.key) || !values.has(at[a.key]);
        case "Exists":
          return (at: Record<string, string>) => Object.hasOwn(at, a.key);
        case "DoesNotExist":
          return (at: Record<string, string>) => !Object.hasOwn(at, a.key);
        default:
          return () => false; // an unknown operator never matches (fail closed)
      }
    });
    return (c: Caller, ns: string | undefined) => {
      if (ids && !ids.has(c.spiffeID)) return false;
      if (nss && (!ns || !nss.has(ns))) return false;
      const at = c.attributes ?? {};
      for (const f of attrs) if (!f(at)) return false;
      return true;
    };
  });
  return (c, ns) => compiled.some((m) => m(c, ns));
}

function compileJWT(rule: APIPolicyRule, keys: JWTVerifyGetKey | string, algorithms: string[], now?: () => Date) {
  const jwt = rule.jwt!;
  const scopes = jwt.requiredScopes ?? [];
  const claims = (jwt.requiredClaims ?? []).map((c) => ({ name: c.name, values: c.values?.length ? new Set(c.values) : undefined }));
  const fail = (reason: "JWTMissing" | "JWTInvalid", message: string): JWTResult => ({ ok: false, reason, message });
  return async (token: string | undefined): Promise<JWTResult> => {
    if (!token) return fail(Reasons.JWTMissing, `a bearer JWT from ${jwt.issuer} is required`);
    if (typeof keys === "string") return fail(Reasons.JWTInvalid, `the JWT cannot be checked: ${keys}`);
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: jwt.issuer,
        audience: jwt.audiences?.length ? jwt.audiences : undefined,
        algorithms,
        clockTolerance: jwt.clockSkewSeconds ?? 30,
        currentDate: now?.(),
      }));
    } catch (err) {
      return fail(Reasons.JWTInvalid, `the JWT was rejected: ${jwtProblem(err)}`);
    }
    const granted = grantedScopes(payload);
    const missing = scopes.filter((s) => !granted.has(s));
    if (missing.length) return fail(Reasons.JWTInvalid, `the JWT lacks scope(s) ${missing.join(", ")}`);
    for (const c of claims) {
      const v = payload[c.name];
      if (v === undefined || v === null) return fail(Reasons.JWTInvalid, `the JWT lacks claim ${c.name}`);
      if (c.values) {
        const have = Array.isArray(v) ? v.map(String) : [String(v)];
        if (!have.some((x) => c.values!.has(x))) return fail(Reasons.JWTInvalid, `the JWT's claim ${c.name} has no accepted value`);
      }
    }
    return { ok: true };
  };
}

function grantedScopes(p: JWTPayload): Set<string> {
  const out = new Set<string>();
  for (const c of [p.scope, p.scp]) {
    if (typeof c === "string") c.split(" ").forEach((s) => s && out.add(s));
    else if (Array.isArray(c)) c.forEach((s) => typeof s === "string" && out.add(s));
  }
  return out;
}

/** A short reason from a jose error, never echoing the token. */
function jwtProblem(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return "it has expired";
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === "iss") return "wrong issuer";
    if (err.claim === "aud") return "wrong audience";
    if (err.claim === "nbf") return "it is not valid yet";
    if (err.claim === "iat") return "it was issued in the future";
    return `claim ${err.claim} is invalid`;
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return "its algorithm is not allowed";
  if (err instanceof joseErrors.JWKSNoMatchingKey) return "no key in the issuer's JWKS matches it";
  if (err instanceof joseErrors.JWKSMultipleMatchingKeys) return "several keys in the issuer's JWKS match it";
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return "bad signature";
  if (err instanceof joseErrors.JWKSTimeout) return "the issuer's JWKS could not be fetched in time";
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return "it is malformed";
  if (err instanceof joseErrors.JOSENotSupported) return "its algorithm or key type is not supported";
  return "it could not be verified";
}
