// `tenet check api`: may identity X call METHOD PATH on workload Y under these APIPolicies? The
// answer comes from the enforcer's own evaluator (policy/authz.ts compilePolicy), on the document
// the operator would serve Y (policyDocument), offline.
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { spiffeIDProblems, spiffeID as spiffeIDOf } from "../pki/spiffe-id.ts";
import { compilePolicy, namespaceOf, policyDocument, type Caller, type Decision } from "../policy/authz.ts";
import { podSpecOf } from "../policy/admission.ts";
import { describe, readInputs, type Located, type ReadDeps } from "./input.ts";
import { parseFlags, UsageError } from "./flags.ts";

export const API_USAGE = `usage: tenet check api --as IDENTITY METHOD PATH --workload [KIND/]NS/NAME -f FILE... [flags]

Says whether IDENTITY may call METHOD PATH on the workload under the APIPolicies in the inputs:
decision, policy and rule, reason — as the workload's enforcer would decide.

  --as IDENTITY        a SPIFFE ID (spiffe://cluster.local/ns/demo/sa/frontend), or NS/NAME of a
                       ServiceIdentity in the inputs (its service account and attributes)
  --attr KEY=VALUE     a certificate attribute of the caller (repeatable; e.g. posture=violating)
  --jwt-claims FILE    a JSON object of JWT claims; the token is taken as validly signed, and its
                       issuer, audience, expiry, scopes and claims are checked against the rules
  --jwt TOKEN          a real bearer JWT, verified against the rules' inline jwks (offline: no jwksURI)
  --workload W         the called workload, found in the inputs (its namespace and pod labels)
  -f, --filename PATH  inputs with the APIPolicies, the workload and ServiceIdentities (repeatable)
  -R, --recursive      read directories' subdirectories too
  -n, --namespace NS   namespace of objects that name none (default: default)
      --trust-domain D the SPIFFE trust domain (default: TENET_TRUST_DOMAIN or cluster.local)
      --at TIME        decide at this RFC 3339 time (JWT expiry)
  -o, --output FORMAT  text (default) or json

Exit codes: 0 allowed; 1 denied (also in audit mode, where the enforcer forwards it); 2 bad input
or usage; 4 no APIPolicy selects the workload (the enforcer lets every request through).
`;

interface APIDeps extends ReadDeps {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  now: () => Date;
  env: NodeJS.ProcessEnv;
}

const VALUES: Record<string, string> = {
  "--as": "as", "--attr": "attr", "--jwt-claims": "jwtClaims", "--jwt": "jwt", "--workload": "workload", "-f": "filename", "--filename": "filename",
  "-n": "namespace", "--namespace": "namespace", "--trust-domain": "trustDomain", "--at": "at", "-o": "output", "--output": "output",
};
const BOOLS: Record<string, string> = { "-R": "recursive", "--recursive": "recursive", "-h": "help", "--help": "help" };

class InputError extends Error {}

export async function runAPICheck(argv: string[], deps: APIDeps): Promise<number> {
  const usage = (why: string) => {
    deps.stderr(`tenet check api: ${why}\n\n${API_USAGE}`);
    return 2;
  };
  let p: ReturnType<typeof parseFlags>;
  try {
    p = parseFlags(argv, VALUES, BOOLS);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    return usage(err.message);
  }
  if (p.bools.has("help")) {
    deps.stdout(API_USAGE);
    return 0;
  }
  const single = (k: string, flag: string) => {
    const v = p.flags[k];
    if (v && v.length > 1) throw new UsageError(`${flag} is given ${v.length} times; give it once`);
    return v?.[0];
  };
  try {
    if (p.args.length !== 2) return usage(`expected METHOD and PATH, got ${p.args.length} argument${p.args.length === 1 ? "" : "s"}`);
    const [method, rawPath] = p.args;
    if (!/^[A-Za-z]{1,16}$/.test(method)) return usage(`${JSON.stringify(method.slice(0, 32))} is not an HTTP method`);
    const as = single("as", "--as");
    const workloadRef = single("workload", "--workload");
    const output = single("output", "--output") ?? "text";
    if (!as) return usage("--as is required: who calls");
    if (!workloadRef) return usage("--workload is required: which workload is called");
    if (!["text", "json"].includes(output)) return usage(`--output ${JSON.stringify(output)} is not one of text, json`);
    if (!p.flags.filename?.length) return usage("no inputs: give -f with the APIPolicies (and the workload)");
    if (p.flags.jwt && p.flags.jwtClaims) return usage("give --jwt or --jwt-claims, not both");
    const at = single("at", "--at");
    const now = at !== undefined ? new Date(at) : deps.now();
    if (isNaN(now.getTime())) return usage(`--at ${JSON.stringify(at)} is not an RFC 3339 time`);
    const trustDomain = single("trustDomain", "--trust-domain") ?? deps.env.TENET_TRUST_DOMAIN ?? "cluster.local";

    const inputs = readInputs(p.flags.filename, { namespace: single("namespace", "--namespace") ?? "default", tenetNamespace: deps.env.TENET_NAMESPACE ?? "tenet-system", recursive: p.bools.has("recursive") }, deps);
    if (inputs.errors.length) {
      for (const e of inputs.errors) deps.stderr(`tenet check api: ${e}\n`);
      return 2;
    }
    const workload = findWorkload(inputs.workloads, workloadRef);
    const namespace: string = workload.obj.metadata.namespace;
    const labels = podSpecOf(workload.obj.kind, workload.obj)!.labels;
    const caller = callerOf(as, trustDomain, inputs.identities, p.flags.attr ?? []);

    const policies = inputs.apiPolicies.map((x) => structuredClone(x.obj));
    let authorization: string | undefined;
    let note: string | undefined;
    if (p.flags.jwtClaims) {
      const claims = readClaims(p.flags.jwtClaims[0], deps);
      // Offline there is no issuer to sign for: sign the claims with a key made for this run and
      // let every rule's JWT check trust that key, so everything but the signature is checked.
      const { publicKey, privateKey } = await generateKeyPair("ES256");
      const jwk = { ...(await exportJWK(publicKey)), kid: "tenet-check", alg: "ES256", use: "sig" };
      for (const pol of policies) for (const r of pol.spec?.rules ?? []) if (r.jwt) r.jwt = { ...r.jwt, jwks: JSON.stringify({ keys: [jwk] }), jwksURI: undefined };
      authorization = `Bearer ${await new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: "tenet-check" }).sign(privateKey)}`;
      note = "the JWT's signature is taken as valid (--jwt-claims); issuer, audience, expiry, scopes and claims are checked";
    } else if (p.flags.jwt) authorization = `Bearer ${p.flags.jwt[0]}`;

    const doc = policyDocument(namespace, labels, policies);
    const compiled = compilePolicy(doc, {
      now: () => now,
      fetch: async () => {
        throw new Error("tenet check works offline and does not fetch jwksURI; use --jwt-claims");
      },
    });
    const decision = await compiled.authorize({ method: method.toUpperCase(), rawPath, caller, authorization });
    const code = decision.reason === "Unprotected" ? 4 : decision.decision === "allow" ? 0 : 1;
    const out = { exitCode: code, workload: describe(workload.obj), caller: { spiffeID: caller.spiffeID, attributes: caller.attributes }, method: method.toUpperCase(), path: rawPath, policies: doc.policies.map((x) => `${x.namespace}/${x.name}`), decision, ...(note ? { note } : {}) };
    deps.stdout(output === "json" ? JSON.stringify(out, null, 2) + "\n" : formatDecision(out, decision));
    return code;
  } catch (err) {
    if (err instanceof UsageError) return usage(err.message);
    if (err instanceof InputError) {
      deps.stderr(`tenet check api: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

function findWorkload(workloads: Located[], ref: string): Located {
  const parts = ref.split("/");
  const [kind, ns, name] = parts.length === 3 ? parts : [undefined, ...parts];
  if (parts.length < 2 || parts.length > 3 || !ns || !name) throw new UsageError(`--workload ${JSON.stringify(ref)}: write NAMESPACE/NAME or KIND/NAMESPACE/NAME`);
  const found = workloads.filter((w) => w.obj.metadata.namespace === ns && w.obj.metadata.name === name && (!kind || w.obj.kind === kind));
  if (found.length === 0) throw new InputError(`no workload ${ref} in the inputs (Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs); add its manifest with -f`);
  if (found.length > 1) throw new InputError(`${ref} names ${found.map((w) => `${w.obj.kind} (${w.where})`).join(" and ")}; write KIND/${ns}/${name}`);
  return found[0];
}

function callerOf(as: string, trustDomain: string, identities: Located[], attrs: string[]): Caller {
  let spiffeID: string;
  let attributes: Record<string, string> = {};
  if (as.startsWith("spiffe://")) {
    const problems = spiffeIDProblems(as);
    if (problems.length) throw new UsageError(`--as ${JSON.stringify(as.slice(0, 256))}: the SPIFFE ID ${problems.join("; ")}`);
    spiffeID = as;
  } else {
    const [ns, name, ...rest] = as.split("/");
    if (!ns || !name || rest.length) throw new UsageError(`--as ${JSON.stringify(as.slice(0, 256))}: give a SPIFFE ID (spiffe://…) or NAMESPACE/NAME of a ServiceIdentity`);
    const si = identities.find((x) => x.obj.metadata.namespace === ns && x.obj.metadata.name === name);
    if (!si) throw new InputError(`no ServiceIdentity ${as} in the inputs; add it with -f, or give --as a SPIFFE ID`);
    const sa = si.obj.spec?.serviceAccountName;
    if (typeof sa !== "string" || !sa) throw new InputError(`ServiceIdentity ${as} (${si.where}) has no spec.serviceAccountName`);
    spiffeID = spiffeIDOf(trustDomain, ns, sa);
    // What the CA would put in the certificate from the identity alone; pod-derived attributes
    // (image, posture, …) come only from --attr.
    attributes = { ...(si.obj.spec.attributes ?? {}), serviceidentity: name };
  }
  for (const a of attrs) {
    const eq = a.indexOf("=");
    if (eq <= 0) throw new UsageError(`--attr ${JSON.stringify(a.slice(0, 256))}: write KEY=VALUE`);
    attributes[a.slice(0, eq)] = a.slice(eq + 1);
  }
  return { spiffeID, namespace: namespaceOf(spiffeID), attributes };
}

function readClaims(file: string, deps: APIDeps): Record<string, unknown> {
  let text: string;
  try {
    text = (file === "-" ? deps.readStdin() : deps.readFile(file)).toString("utf8");
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new InputError(`--jwt-claims ${file}: cannot read it: ${e.code === "ENOENT" ? "no such file" : e.message}`);
  }
  let claims: unknown;
  try {
    claims = JSON.parse(text);
  } catch (err) {
    throw new InputError(`--jwt-claims ${file}: not JSON (${(err as Error).message}); write the claims as one JSON object`);
  }
  if (!claims || typeof claims !== "object" || Array.isArray(claims)) throw new InputError(`--jwt-claims ${file}: the claims must be one JSON object`);
  return claims as Record<string, unknown>;
}

function formatDecision(out: { workload: string; caller: { spiffeID: string }; method: string; path: string; policies: string[]; note?: string }, d: Decision): string {
  const lines = [
    `decision  ${d.decision}${d.mode === "audit" && d.decision === "deny" ? " (audit mode: the enforcer forwards it anyway)" : ""}`,
    `rule      ${d.rule ? `${d.policy} ${d.rule}` : "(none)"}`,
    `reason    ${d.reason}: ${d.message}`,
    `request   ${out.caller.spiffeID} → ${out.method} ${out.path} on ${out.workload}`,
    ...(d.api ? [`api       ${d.api}${d.scope ? ` (scope ${d.scope})` : ""}`] : []),
    `status    ${d.forward ? "forwarded to the app" : `answered ${d.status} by the enforcer`}`,
    `policies  ${out.policies.length ? out.policies.join(", ") : "(none selects the workload)"}`,
    ...(out.note ? [`note      ${out.note}`] : []),
  ];
  return lines.join("\n") + "\n";
}
