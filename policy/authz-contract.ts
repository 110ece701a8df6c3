// The contract between the operator (which compiles APIPolicies into a per-workload document)
// and the enforcer (which evaluates that document on every request). Types only: the operator
// side lives in policy/authz.ts, the enforcer imports the same module, so both agree by type.
import type { APIPolicySpec } from "../crds/types.gen.ts";

/** Everything one workload's enforcer needs to authorize requests, versioned by content hash. */
export interface PolicyDocument {
  /**
   * sha256 (hex, first 16 chars) of the canonical JSON of `policies` (of `{jwks, policies}` when
   * `jwks` is present); "empty" when none apply.
   */
  version: string;
  /** The APIPolicies whose selector matches the workload's pod, sorted by namespace/name. */
  policies: { namespace: string; name: string; spec: APIPolicySpec }[];
  /**
   * The JWKS documents (JSON text) the operator fetched for the rules' jwksURI, by URI, so
   * enforcers never fetch keys on the request path. Absent when no rule names a jwksURI or no
   * fetch has succeeded yet (the evaluator then fetches the URI itself).
   */
  jwks?: Record<string, string>;
  /** What transparent capture needs (operator/apipolicy/mesh.ts); absent from older operators. */
  mesh?: MeshDocument;
}

/**
 * The mesh as one workload's enforcer sees it: its own inbound and egress settings (from its
 * ServiceIdentity) and every meshed destination with the SPIFFE ID it must present. Versioned
 * apart from the policies (the ETag carries both), since pods come and go far more often.
 */
export interface MeshDocument {
  version: string;
  /** strict: plaintext callers are refused (default); permissive: admitted and audited as plaintext. */
  inbound: "strict" | "permissive";
  /** What captured outbound connections to a destination outside the mesh get: allow (pass through, default) or deny. */
  egress: "allow" | "deny";
  /** SPIFFE IDs, referenced by index below. */
  ids: string[];
  /** "clusterIP:port" of a Service → its meshed endpoints [podIP, targetPort, id index]. */
  services: Record<string, [string, number, number][]>;
  /** Pod IP of a meshed pod → id index. */
  pods: Record<string, number>;
}

/** The caller as the enforcer learned it from the verified client certificate. */
export interface Caller {
  spiffeID: string;
  /** Parsed from the SPIFFE ID (spiffe://<td>/ns/<namespace>/sa/<sa>). */
  namespace?: string;
  /** Identity attributes carried in the certificate (image, commit, tier, posture, …). */
  attributes: Record<string, string>;
}

export interface AuthzRequest {
  method: string;
  /** The raw request target as received (path + query); normalized by the evaluator. */
  rawPath: string;
  /** Undefined only for a request that did not come over mTLS (never allowed by a rule with `from`). */
  caller?: Caller;
  /** The Authorization header, if any (a Bearer JWT when a rule requires one). */
  authorization?: string;
}

export interface Decision {
  /** Whether to forward the request. In audit mode a would-be denial is forwarded. */
  forward: boolean;
  /** allow | deny — what the policy decided, whatever the mode. */
  decision: "allow" | "deny";
  /** HTTP status to answer with when not forwarded: 400 (unusable path), 401 (JWT), 403. */
  status: number;
  mode: "enforce" | "audit";
  /** Machine-readable reason, e.g. Allowed, NoMatchingAPI, NoRuleAllows, DeniedByRule, JWTMissing, JWTInvalid, BadPath. */
  reason: string;
  /** One short sentence for the caller and the audit record; never contains a token. */
  message: string;
  /** `<namespace>/<policy>` and rule name that decided, when one did. */
  policy?: string;
  rule?: string;
  api?: string;
  scope?: string;
  /** The normalized path the decision was made on. */
  path?: string;
}
