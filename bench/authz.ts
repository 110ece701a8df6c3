// APIPolicy evaluation cost per request: one authorize() against a compiled document of 1,000
// rules (4 APIPolicies × 250 rules over the same 50 APIs; peers by SPIFFE ID, namespace and
// attribute requirements; 10% deny rules), for a mix of allowed, denied, unmatched and
// dot-segment/percent-encoded requests.
// Baseline, measured in the same run: JSON.parse of a typical request's headers (15 headers,
// ~900 bytes). The enforcer does not do that itself, but it is per-request work of the same
// kind (touch every byte, allocate a small object) with a cost that depends only on the machine,
// so the ratio says "evaluation costs N header parses" on any machine. Also reported: a minimal
// evaluation (1 API, 1 rule) — what the rule count adds — and the µs of one evaluation with an
// ES256 JWT rule, so the enforcer benchmark can compute policy's share of per-request cost.
import os from "node:os";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import type { APIPolicy, APIPolicySpec } from "../crds/types.gen.ts";
import { compilePolicy, policyDocument, type AuthzRequest } from "../policy/authz.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 300);
const NS = "shop";
const APIS = 50;
const POLICIES = 4;
const RULES_PER_POLICY = 250;

// ---- setup (not measured) -------------------------------------------------------------------
let seed = 42;
const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
const apis: APIPolicySpec["apis"] = Array.from({ length: APIS }, (_, i) => ({
  name: `api-${i}`,
  paths: [`/v1/svc${i}/items`, `/v1/svc${i}/items/*`, `/v1/svc${i}/admin/**`],
  methods: { GET: "read", POST: "create", PUT: "update", DELETE: "delete" },
}));
const scopes = ["read", "create", "update", "delete"];
const policies: APIPolicy[] = Array.from({ length: POLICIES }, (_, p) => ({
  apiVersion: "tenet.dev/v1alpha1",
  kind: "APIPolicy",
  metadata: { name: `team-${p}`, namespace: NS },
  spec: {
    selector: { matchLabels: { app: "orders" } },
    mode: "enforce",
    apis,
    rules: Array.from({ length: RULES_PER_POLICY }, (_, r) => {
      const kind = r % 3;
      const peer =
        kind === 0
          ? { spiffeIDs: [`spiffe://cluster.local/ns/ns${rnd(20)}/sa/sa${rnd(50)}`] }
          : kind === 1
            ? { namespaces: [`ns${rnd(20)}`] }
            : { namespaces: [`ns${rnd(20)}`], attributes: [{ key: "tier", operator: "In" as const, values: ["web", "api"] }, { key: "posture", operator: "NotIn" as const, values: ["violating"] }] };
      return {
        name: `r-${p}-${r}`,
        action: r % 10 === 9 ? ("deny" as const) : ("allow" as const),
        from: [peer],
        to: Array.from({ length: 1 + rnd(3) }, (_, k) => ({ api: `api-${(r + k * 17) % APIS}`, scopes: rnd(2) ? [scopes[rnd(4)]] : undefined })).filter((t, i, a) => a.findIndex((x) => x.api === t.api) === i),
      };
    }),
  },
}));
const big = compilePolicy(policyDocument(NS, { app: "orders" }, policies));
const small = compilePolicy(
  policyDocument(NS, { app: "orders" }, [
    { ...policies[0], spec: { selector: {}, apis: [apis[0]], rules: [{ name: "one", from: [{ namespaces: ["ns1"] }], to: [{ api: "api-0" }] }] } },
  ]),
);

const methods = ["GET", "POST", "PUT", "DELETE"];
const pathFor = (i: number, v: number) =>
  [`/v1/svc${i}/items`, `/v1/svc${i}/items/${v}`, `/v1/svc${i}/admin/users/${v}?page=2`, `/v1/svc${i}/x/../items/${v}`, `/v1/%73vc${i}/items/${v}`, `/v1/nope/${v}`][v % 6];
const requests: AuthzRequest[] = Array.from({ length: 256 }, (_, n) => ({
  method: methods[rnd(4)],
  rawPath: pathFor(rnd(APIS), n),
  caller: { spiffeID: `spiffe://cluster.local/ns/ns${rnd(20)}/sa/sa${rnd(50)}`, attributes: { tier: ["web", "api", "batch"][rnd(3)], posture: ["clean", "warn", "violating"][rnd(3)] } },
}));
const outcomes = new Map<string, number>();
for (const r of requests) {
  const d = await big.authorize(r);
  outcomes.set(d.reason, (outcomes.get(d.reason) ?? 0) + 1);
}
const smallReq: AuthzRequest = { method: "GET", rawPath: "/v1/svc0/items/7", caller: { spiffeID: "spiffe://cluster.local/ns/ns1/sa/a", attributes: {} } };
if ((await small.authorize(smallReq)).decision !== "allow") throw new Error("setup: the minimal document must allow its request");

const headers = JSON.stringify({
  host: "orders.shop.svc.cluster.local:8080",
  "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
  accept: "application/json, text/plain, */*",
  "accept-encoding": "gzip, deflate, br",
  "accept-language": "en-US,en;q=0.9",
  "content-type": "application/json",
  "content-length": "512",
  "x-request-id": "5f2b0c1e-8d7a-4c3b-9e6f-1a2b3c4d5e6f",
  traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
  tracestate: "congo=t61rcWkgMzE",
  "x-forwarded-for": "10.0.12.7",
  "x-forwarded-proto": "https",
  cookie: "session=3b1f0e9c2d8a7f6e5d4c3b2a1f0e9d8c; theme=dark; lang=en",
  "cache-control": "no-cache",
  origin: "https://shop.example.com",
});

// JWT: one ES256 rule on the API of the request.
const { privateKey, publicKey } = await generateKeyPair("ES256");
const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: "k", alg: "ES256" }] });
const jwtDoc = compilePolicy(
  policyDocument(NS, {}, [{ ...policies[0], spec: { selector: {}, apis: [apis[0]], rules: [{ name: "jwt", from: [{ namespaces: ["ns1"] }], jwt: { issuer: "https://idp", audiences: ["orders"], jwks, requiredScopes: ["orders.read"] }, to: [{ api: "api-0" }] }] } }]),
);
const token = await new SignJWT({ scope: "orders.read" }).setProtectedHeader({ alg: "ES256", kid: "k" }).setIssuer("https://idp").setAudience("orders").setExpirationTime("1h").sign(privateKey);
const jwtReq: AuthzRequest = { ...smallReq, authorization: `Bearer ${token}` };
if ((await jwtDoc.authorize(jwtReq)).decision !== "allow") throw new Error("setup: the JWT document must allow its request");

// ---- measurement ----------------------------------------------------------------------------
let i = 0;
const measurements = {
  evaluate: () => big.authorize(requests[i++ & 255]),
  minimal: () => small.authorize(smallReq),
  jwt: () => jwtDoc.authorize(jwtReq),
  // Wrapped in an async function like the others, so promise overhead is on both sides.
  baseline: async () => JSON.parse(headers),
};
type Name = keyof typeof measurements;

async function run(fn: () => Promise<unknown>, ms: number) {
  const start = process.hrtime.bigint();
  const limit = start + BigInt(ms) * 1_000_000n;
  let ops = 0;
  let now = start;
  while (now < limit) {
    for (let k = 0; k < 16; k++) await fn();
    ops += 16;
    now = process.hrtime.bigint();
  }
  return { ops, secs: Number(now - start) / 1e9 };
}

for (const fn of Object.values(measurements)) await run(fn, 150);
const totals = Object.fromEntries(Object.keys(measurements).map((k) => [k, { ops: 0, secs: 0 }])) as Record<Name, { ops: number; secs: number }>;
const order = Object.keys(measurements) as Name[];
const ratios: number[] = [];
for (let r = 1; r <= ROUNDS; r++) {
  const us = {} as Record<Name, number>;
  for (const name of r % 2 ? order : [...order].reverse()) {
    const m = await run(measurements[name], ROUND_MS);
    totals[name].ops += m.ops;
    totals[name].secs += m.secs;
    us[name] = (m.secs * 1e6) / m.ops;
  }
  ratios.push(us.evaluate / us.baseline);
  console.log(`round ${r}/${ROUNDS}: ${order.map((n) => `${n} ${us[n].toFixed(2)} µs`).join(", ")} → ratio ${(us.evaluate / us.baseline).toFixed(2)}`);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const usOf = (k: Name) => Math.round(((totals[k].secs * 1e6) / totals[k].ops) * 100) / 100;
const ratio = Math.round(median(ratios) * 100) / 100;
const rules = policies.reduce((n, p) => n + (p.spec.rules?.length ?? 0), 0);
console.log(`evaluation (${rules} rules, ${APIS} APIs, ${POLICIES} policies): ${usOf("evaluate")} µs; minimal (1 rule): ${usOf("minimal")} µs; with ES256 JWT: ${usOf("jwt")} µs`);
console.log(`baseline (JSON.parse of ${headers.length} B of request headers): ${usOf("baseline")} µs; ${os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? "?"}`);
console.log(`outcomes of the request mix: ${[...outcomes].map(([k, v]) => `${k} ${v}`).join(", ")}`);
console.log(`ratio evaluation/baseline: ${ratio}, median of ${ROUNDS} rounds (goal <= 10)`);
console.log(
  JSON.stringify({
    bench: "authz",
    ratio,
    goal: "<= 10 (one evaluation against 1,000 rules costs at most 10 JSON.parse calls of a request's headers)",
    details: {
      usPerEvaluation: usOf("evaluate"),
      usPerMinimalEvaluation: usOf("minimal"),
      usPerJWTEvaluation: usOf("jwt"),
      usPerBaseline: usOf("baseline"),
      rules,
      apis: APIS,
      policies: POLICIES,
      headerBytes: headers.length,
      outcomes: Object.fromEntries(outcomes),
      node: process.version,
    },
  }),
);
