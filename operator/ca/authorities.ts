// The CA set and its rotation, as a pure state machine over time:
//   pending  — in the trust bundle, not signing yet (peers learn it first)
//   active   — signs every new certificate (exactly one)
//   retired  — stays in the bundle until the last certificate it signed has expired
// planAuthorities() is the whole policy; the store only persists what it returns.
import { createCA, loadCA } from "./keypair.ts";
import { type CAKeyPair } from "./signing.ts";

export type AuthorityStatus = "pending" | "active" | "retired";

export interface AuthorityRecord {
  cert: string;
  key: string;
  status: AuthorityStatus;
  /** pending: when it starts signing. */
  activateAt?: string;
  /** retired: when it leaves the bundle (its last leaf has expired by then). */
  removeAt?: string;
}

export interface CAState {
  version: 1;
  authorities: AuthorityRecord[];
  /** The last `tenet.dev/rotate` request acted on, so one request rotates once. */
  handledRotation?: string;
}

export interface CAPolicy {
  commonName: string;
  validitySeconds: number;
  /** Rotate on our own when the active CA has less than this left. */
  rotateBeforeSeconds: number;
  /** How long a new CA sits in the bundle before it signs (bundle propagation). */
  propagationSeconds: number;
  /** Longest leaf lifetime we issue: how long a retired CA stays in the bundle. */
  maxLeafTTLSeconds: number;
}

export const defaultCAPolicy: CAPolicy = {
  commonName: "Tenet Workload CA",
  validitySeconds: 365 * 86_400,
  rotateBeforeSeconds: 30 * 86_400,
  propagationSeconds: 120,
  maxLeafTTLSeconds: 168 * 3600,
};

export interface PlanResult {
  state: CAState;
  changed: boolean;
  notes: { reason: string; message: string }[];
}

export function planAuthorities(current: CAState | undefined, now: Date, policy: CAPolicy, rotationRequest?: string): PlanResult {
  const notes: PlanResult["notes"] = [];
  const state: CAState = current ? structuredClone(current) : { version: 1, authorities: [] };
  let changed = !current;
  const t = now.getTime();
  const iso = (ms: number) => new Date(ms).toISOString();

  if (state.authorities.length === 0) {
    const ca = createCA({ commonName: policy.commonName, validitySeconds: policy.validitySeconds, now });
    state.authorities.push({ cert: ca.certPem, key: ca.keyPem, status: "active" });
    notes.push({ reason: "CACreated", message: `created CA ${ca.serial} valid until ${ca.notAfter.toISOString()}` });
    changed = true;
  }

  // Retired CAs leave the bundle once nothing they signed can still be valid.
  const before = state.authorities.length;
  state.authorities = state.authorities.filter((a) => !(a.status === "retired" && a.removeAt && Date.parse(a.removeAt) <= t));
  if (state.authorities.length !== before) {
    changed = true;
    notes.push({ reason: "CARemoved", message: `removed ${before - state.authorities.length} retired CA(s) from the trust bundle: every certificate they signed has expired` });
  }

  const active = state.authorities.find((a) => a.status === "active");
  const pending = state.authorities.find((a) => a.status === "pending");
  const activeCA = active ? readCA(active) : undefined;

  const requested = rotationRequest !== undefined && rotationRequest !== "" && rotationRequest !== state.handledRotation;
  const expiring = activeCA && activeCA.notAfter.getTime() - t < policy.rotateBeforeSeconds * 1000;
  if (!pending && (requested || expiring)) {
    const ca = createCA({ commonName: policy.commonName, validitySeconds: policy.validitySeconds, now });
    state.authorities.push({ cert: ca.certPem, key: ca.keyPem, status: "pending", activateAt: iso(t + policy.propagationSeconds * 1000) });
    notes.push({
      reason: "CARotationStarted",
      message: `new CA ${ca.serial} joined the trust bundle (${requested ? `requested: ${rotationRequest}` : `active CA expires ${activeCA!.notAfter.toISOString()}`}); it signs from ${iso(t + policy.propagationSeconds * 1000)}`,
    });
    changed = true;
  }
  if (requested) {
    state.handledRotation = rotationRequest;
    changed = true;
  }

  const due = state.authorities.find((a) => a.status === "pending" && a.activateAt && Date.parse(a.activateAt) <= t);
  if (due) {
    for (const a of state.authorities) {
      if (a.status === "active") {
        const old = readCA(a);
        a.status = "retired";
        a.removeAt = iso(Math.min(old.notAfter.getTime(), t + policy.maxLeafTTLSeconds * 1000));
        notes.push({ reason: "CARetired", message: `CA ${old.serial} stopped signing; it stays in the trust bundle until ${a.removeAt}` });
      }
    }
    due.status = "active";
    delete due.activateAt;
    notes.push({ reason: "CARotated", message: `CA ${readCA(due).serial} now signs new certificates` });
    changed = true;
  }
  return { state, changed, notes };
}

/** Reads a CA's metadata whatever its validity: planning must work even on an expired CA. */
const readCA = (a: AuthorityRecord) => loadCA(a.cert, a.key, { now: new Date(0) });

/** When the plan should run again on its own (next activation or removal). */
export function nextPlanAt(state: CAState): number | undefined {
  const times = state.authorities.flatMap((a) => [a.activateAt, a.removeAt]).filter((x): x is string => !!x).map(Date.parse);
  return times.length ? Math.min(...times) : undefined;
}

export interface LoadedAuthorities {
  active: CAKeyPair;
  all: { ca: CAKeyPair; status: AuthorityStatus }[];
  bundlePem: string;
}

/** Parses a state for signing; throws with a message that says what is wrong. */
export function loadAuthorities(state: CAState): LoadedAuthorities {
  if (state?.version !== 1 || !Array.isArray(state.authorities)) throw new Error("state.json has no version 1 authorities list");
  const all = state.authorities.map((a, i) => {
    try {
      // Only the active CA must be within its validity to sign; the others are bundle members.
      return { ca: a.status === "active" ? loadCA(a.cert, a.key) : readCA(a), status: a.status };
    } catch (err) {
      throw new Error(`authorities[${i}] (${a.status}): ${(err as Error).message}`);
    }
  });
  const actives = all.filter((a) => a.status === "active");
  if (actives.length !== 1) throw new Error(`expected exactly one active CA, found ${actives.length}`);
  return { active: actives[0].ca, all, bundlePem: all.map((a) => a.ca.certPem.trim()).join("\n") + "\n" };
}
