// The servers the webhook benchmark loads, in their own process so the load generator does not
// share their event loop: Tenet's /validate and /mutate (the same fastify server, transport,
// handlers and policy code the operator runs, fed from in-memory caches as the informers feed
// them) and a bare fastify HTTPS handler that answers a fixed AdmissionReview.
// Prints one JSON line with the ports, then serves until killed.
import Fastify from "fastify";
import { Registry } from "prom-client";
import { createLogger } from "../common/logger.ts";
import type { RuntimeRuleSpec } from "../crds/types.gen.ts";
import { createCA } from "../operator/ca/keypair.ts";
import { issueLeaf } from "../operator/ca/leaf.ts";
import { configFromEnv } from "../operator/config.ts";
import { buildSecureServer } from "../operator/server/app.ts";
import { fromVulnerabilityReport } from "../scans/parse.ts";
import { ScanIndex } from "../scans/scan-index.ts";
import type { RuleRef } from "../policy/vulnerabilities.ts";
import { AdmissionMetrics, admissionRoute } from "../operator/admission/transport.ts";
import { mutate } from "../admission/mutate.ts";
import { validate } from "../admission/validate.ts";
import { PatchCache } from "../admission/patch-cache.ts";
import { VerdictCache } from "../admission/verdict-cache.ts";
import { BENCH_NAMESPACE, REPORTS, RULES, vulnerabilityReport } from "./_webhook-data.ts";
import crypto from "node:crypto";

const log = createLogger("bench-webhook", { level: "warn", pretty: false });

// A serving certificate from Tenet's own CA, as the operator has.
const ca = createCA({ commonName: "bench CA", validitySeconds: 86_400 });
const { privateKey, publicKey } = crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
const leaf = issueLeaf(ca, {
  publicKeyDer: publicKey.export({ type: "spki", format: "der" }),
  spiffeID: "spiffe://cluster.local/ns/tenet-system/sa/tenet-operator",
  dnsNames: ["localhost"],
  attributes: {},
  ttlSeconds: 86_400,
});
const tls = { key: privateKey.export({ type: "pkcs8", format: "pem" }) as string, cert: leaf.pem };

// 1,000 cached VulnerabilityReports and 10 RuntimeRules selecting the pod.
const scans = new ScanIndex();
for (let i = 0; i < REPORTS; i++) scans.upsert(`vr/${BENCH_NAMESPACE}/r${i}`, fromVulnerabilityReport(vulnerabilityReport(i)));
const rules: RuleRef[] = Array.from({ length: RULES }, (_, i) => ({
  namespace: BENCH_NAMESPACE,
  name: `rule-${i}`,
  spec: {
    selector: { matchLabels: { app: "orders" } },
    enforcement: "enforce",
    vulnerabilities: { thresholds: { critical: 5 + i, high: 20 }, ignoreUnfixed: i % 2 === 0, unscannedImages: "warn", exemptions: [{ id: `CVE-2024-${1000 + i}`, expires: "2099-01-01T00:00:00Z", reason: "bench" }] },
    podSecurity: { allowPrivileged: false, allowedRegistries: ["ghcr.io/acme"] },
  } as RuntimeRuleSpec,
}));

const tenet = buildSecureServer(log, tls);
const metrics = new AdmissionMetrics(new Registry());
const injection = configFromEnv({ TENET_NAMESPACE: "tenet-system" }).injection;
// As the operator wires them (operator/admission/index.ts); BENCH_NO_CACHE=1 measures without.
const caches = process.env.BENCH_NO_CACHE === "1" ? {} : { verdicts: new VerdictCache(), patches: new PatchCache() };
const validateDeps = { rules: (ns: string) => (ns === BENCH_NAMESPACE ? rules : []), scans, now: () => new Date(), injection, verdicts: caches.verdicts };
const mutateDeps = { namespaceLabels: () => ({ "tenet.dev/inject": "enabled" }), config: injection, patches: caches.patches };
admissionRoute(tenet, { path: "/validate", webhook: "validate", log, metrics, handler: (req, key) => validate(req, validateDeps, caches.verdicts && key) });
admissionRoute(tenet, { path: "/mutate", webhook: "mutate", log, metrics, handler: (req, key) => mutate(req, mutateDeps, caches.patches && key) });

// The baseline: the same TLS and the same HTTP stack, no decision at all.
const bare = Fastify({ https: { key: tls.key, cert: tls.cert, minVersion: "TLSv1.2" }, logger: false, bodyLimit: 3 * 1024 * 1024 });
bare.post("/fixed", async (req) => ({
  apiVersion: "admission.k8s.io/v1",
  kind: "AdmissionReview",
  response: { uid: (req.body as any)?.request?.uid ?? "", allowed: true },
}));

await tenet.listen({ host: "127.0.0.1", port: 0 });
await bare.listen({ host: "127.0.0.1", port: 0 });
const port = (app: { server: { address(): unknown } }) => (app.server.address() as { port: number }).port;
console.log(JSON.stringify({ tenet: port(tenet), bare: port(bare), ca: ca.certPem }));
// Exit normally on SIGTERM so --cpu-prof (BENCH_SERVER_NODE_ARGS) can write its profile.
process.on("SIGTERM", () => process.exit(0));
