// The CRDs' OpenAPI schemas and CEL rules, checked against a real API server: each case is a
// server-side dry-run create with strict field validation, so nothing is stored and no
// controller runs. A rejection must be a 422 whose message carries the API server's own text.
import { strict as assert } from "node:assert";
import { KubeError, resourcePath, Resources } from "../../common/kube.ts";
import { cluster, newNamespace } from "../harness/controlplane.ts";

type Kind = "ServiceIdentity" | "APIPolicy" | "RuntimeRule";

interface Case {
  /** A sentence stating the behaviour. */
  name: string;
  spec: Record<string, unknown>;
  /** Accepted, or rejected with a message containing this fragment. */
  expect: "accept" | { reject: string };
}

const resources = {
  ServiceIdentity: Resources.serviceIdentities,
  APIPolicy: Resources.apiPolicies,
  RuntimeRule: Resources.runtimeRules,
} as const;

const reject = (fragment: string) => ({ reject: fragment });

const selector = { matchLabels: { app: "x" } };

// ---- ServiceIdentity

const serviceIdentityCases: Case[] = [
  { name: "accepts a spec with only a matchLabels selector", spec: { selector }, expect: "accept" },
  { name: "accepts an empty selector, which selects every pod", spec: { selector: {} }, expect: "accept" },
  { name: "rejects a spec without a selector", spec: { serviceAccountName: "x" }, expect: reject("spec.selector: Required value") },
  { name: "rejects a ttl over 168h with the CEL message", spec: { selector, certificate: { ttl: "169h" } }, expect: reject("ttl must be between 5m and 168h") },
  {
    name: "rejects a ttl under 5m with the CEL message",
    spec: { selector, certificate: { ttl: "4m", renewBefore: "1m" } },
    expect: reject("ttl must be between 5m and 168h"),
  },
  { name: "accepts a ttl of exactly 168h with a compound renewBefore", spec: { selector, certificate: { ttl: "168h", renewBefore: "1h30m" } }, expect: "accept" },
  {
    name: "rejects a renewBefore equal to the ttl",
    spec: { selector, certificate: { ttl: "1h", renewBefore: "1h" } },
    expect: reject("renewBefore must be greater than zero and shorter than ttl"),
  },
  { name: "rejects a ttl shorter than the defaulted renewBefore of 8h", spec: { selector, certificate: { ttl: "6h" } }, expect: reject("renewBefore must be") },
  { name: "rejects a zero renewBefore", spec: { selector, certificate: { renewBefore: "0s" } }, expect: reject("renewBefore must be") },
  { name: "rejects a ttl in days, which is not a Go duration", spec: { selector, certificate: { ttl: "1d" } }, expect: reject("spec.certificate.ttl") },
  { name: "rejects a negative ttl", spec: { selector, certificate: { ttl: "-1h" } }, expect: reject("spec.certificate.ttl") },
  { name: "rejects a DNS name with uppercase letters and an underscore", spec: { selector, certificate: { dnsNames: ["Orders_Svc"] } }, expect: reject("dnsNames") },
  { name: "rejects a wildcard DNS name (issue 11 item 2)", spec: { selector, certificate: { dnsNames: ["*.orders.demo.svc", "orders.demo.svc"] } }, expect: reject("wildcard DNS names are not allowed") },
  { name: "rejects a wildcard for every Service (*.svc)", spec: { selector, certificate: { dnsNames: ["*.svc"] } }, expect: reject("wildcard DNS names are not allowed") },
  { name: "rejects a DNS name that is not a Service name form (www.example.com)", spec: { selector, certificate: { dnsNames: ["www.example.com"] } }, expect: reject("DNS names must name a Service in this namespace") },
  { name: "accepts the four Service name forms", spec: { selector, certificate: { dnsNames: ["orders", "orders.demo", "orders.demo.svc", "orders.demo.svc.cluster.local"] } }, expect: "accept" },
  { name: "rejects duplicate DNS names", spec: { selector, certificate: { dnsNames: ["a.b", "a.b"] } }, expect: reject("Duplicate value") },
  { name: "rejects an attribute key that is not a valid label key", spec: { selector, attributes: { "bad key!": "x" } }, expect: reject("attribute keys must be valid label keys") },
  { name: "accepts prefixed and unprefixed attribute keys", spec: { selector, attributes: { "acme.example/team": "x", tier: "backend" } }, expect: "accept" },
  {
    name: "rejects an In selector expression without values",
    spec: { selector: { matchExpressions: [{ key: "app", operator: "In" }] } },
    expect: reject("values must be non-empty for operator In"),
  },
  {
    name: "rejects an Exists selector expression with values",
    spec: { selector: { matchExpressions: [{ key: "app", operator: "Exists", values: ["a"] }] } },
    expect: reject("and empty for Exists"),
  },
  {
    name: "accepts Exists and NotIn selector expressions",
    spec: { selector: { matchExpressions: [{ key: "app", operator: "Exists" }, { key: "tier", operator: "NotIn", values: ["db"] }] } },
    expect: "accept",
  },
  {
    name: "rejects an unknown selector operator",
    spec: { selector: { matchExpressions: [{ key: "app", operator: "Equals", values: ["a"] }] } },
    expect: reject("Unsupported value"),
  },
  { name: "rejects a matchLabels key that is not a valid label key", spec: { selector: { matchLabels: { "-app": "x" } } }, expect: reject("matchLabels keys must be valid label keys") },
  { name: "rejects a matchLabels value containing a space", spec: { selector: { matchLabels: { app: "a b" } } }, expect: reject("matchLabels") },
  { name: "rejects a serviceAccountName with uppercase letters", spec: { selector, serviceAccountName: "Orders" }, expect: reject("serviceAccountName") },
];

// ---- APIPolicy

const apis = [{ name: "orders", paths: ["/orders", "/orders/*", "/orders/*/items/**"], methods: { GET: "read", POST: "create" } }];
/** A single API "a" serving `paths`, for the path-syntax cases. */
const apiWithPaths = (...paths: string[]) => [{ name: "a", paths, methods: { GET: "read" } }];
/** A policy over the "orders" API with the given rules. */
const withRules = (...rules: unknown[]) => ({ selector, apis, rules });

const apiPolicyCases: Case[] = [
  { name: "accepts a policy with one API and no rules", spec: { selector, apis }, expect: "accept" },
  { name: "rejects a policy without apis", spec: { selector }, expect: reject("spec.apis: Required value") },
  { name: "rejects an empty apis list", spec: { selector, apis: [] }, expect: reject("spec.apis") },
  { name: "rejects an unknown mode", spec: { selector, mode: "permissive", apis }, expect: reject("Unsupported value") },
  {
    name: "rejects an HTTP method that is not in the allowed list",
    spec: { selector, apis: [{ name: "a", paths: ["/x"], methods: { GET: "read", FETCH: "read" } }] },
    expect: reject("method keys must be one of"),
  },
  {
    name: "rejects a lowercase HTTP method",
    spec: { selector, apis: [{ name: "a", paths: ["/x"], methods: { get: "read" } }] },
    expect: reject("method keys must be one of"),
  },
  {
    name: "rejects a scope name with uppercase letters",
    spec: { selector, apis: [{ name: "a", paths: ["/x"], methods: { GET: "Read" } }] },
    expect: reject("methods"),
  },
  { name: "rejects a path without a leading slash", spec: { selector, apis: apiWithPaths("orders") }, expect: reject("paths") },
  { name: "rejects a ** glob in the middle of a path", spec: { selector, apis: apiWithPaths("/a/**/b") }, expect: reject("paths") },
  { name: "rejects a glob that covers only part of a segment", spec: { selector, apis: apiWithPaths("/a/b*") }, expect: reject("paths") },
  { name: "rejects a path with an empty segment", spec: { selector, apis: apiWithPaths("/a//b") }, expect: reject("paths") },
  { name: "rejects a path with a .. segment", spec: { selector, apis: apiWithPaths("/a/../b") }, expect: reject("must not contain") },
  { name: "rejects a percent-encoded path", spec: { selector, apis: apiWithPaths("/a%2Fb") }, expect: reject("paths") },
  {
    name: "accepts the root path, a match-everything glob and a single-segment glob",
    spec: { selector, apis: [{ name: "a", paths: ["/", "/**", "/v1/*"], methods: { GET: "read", DELETE: "delete" } }] },
    expect: "accept",
  },
  {
    name: "rejects two APIs with the same name",
    spec: {
      selector,
      apis: [
        { name: "a", paths: ["/x"], methods: { GET: "read" } },
        { name: "a", paths: ["/y"], methods: { GET: "read" } },
      ],
    },
    expect: reject("Duplicate value"),
  },
  {
    name: "rejects two rules with the same name",
    spec: withRules({ name: "r", to: [{ api: "orders" }] }, { name: "r", to: [{ api: "orders" }] }),
    expect: reject("Duplicate value"),
  },
  {
    name: "accepts a rule naming an API the policy does not declare, leaving that to the operator",
    spec: withRules({ name: "r", to: [{ api: "payments" }] }),
    expect: "accept",
  },
  { name: "rejects a rule without to", spec: withRules({ name: "r" }), expect: reject("to: Required value") },
  {
    name: "rejects an empty peer",
    spec: withRules({ name: "r", from: [{}], to: [{ api: "orders" }] }),
    expect: reject("a peer must set at least one of"),
  },
  {
    name: "rejects a peer whose lists are all empty",
    spec: withRules({ name: "r", from: [{ spiffeIDs: [], namespaces: [] }], to: [{ api: "orders" }] }),
    expect: reject("a peer must set at least one of"),
  },
  {
    name: "rejects a peer SPIFFE ID that is not a spiffe:// URI",
    spec: withRules({ name: "r", from: [{ spiffeIDs: ["https://x/ns/a"] }], to: [{ api: "orders" }] }),
    expect: reject("spiffeIDs"),
  },
  {
    name: "rejects a peer attribute requirement with operator In and no values",
    spec: withRules({ name: "r", from: [{ attributes: [{ key: "tier", operator: "In" }] }], to: [{ api: "orders" }] }),
    expect: reject("values must be non-empty"),
  },
  {
    name: "accepts a deny rule with namespace and attribute peers and scoped targets",
    spec: withRules({
      name: "r",
      action: "deny",
      from: [{ namespaces: ["demo"] }, { attributes: [{ key: "tenet.dev/posture", operator: "NotIn", values: ["clean"] }] }],
      to: [{ api: "orders", scopes: ["read"] }],
    }),
    expect: "accept",
  },
  {
    name: "rejects a JWT requirement with neither jwksURI nor jwks",
    spec: withRules({ name: "r", jwt: { issuer: "https://i" }, to: [{ api: "orders" }] }),
    expect: reject("exactly one of jwksURI and jwks"),
  },
  {
    name: "rejects a JWT requirement with both jwksURI and jwks",
    spec: withRules({ name: "r", jwt: { issuer: "https://i", jwksURI: "https://i/jwks", jwks: "{}" }, to: [{ api: "orders" }] }),
    expect: reject("exactly one of jwksURI and jwks"),
  },
  {
    name: "rejects a plain-http jwksURI",
    spec: withRules({ name: "r", jwt: { issuer: "https://i", jwksURI: "http://i/jwks" }, to: [{ api: "orders" }] }),
    expect: reject("jwksURI"),
  },
  {
    name: "rejects a jwksURI without a host with the CEL message",
    spec: withRules({ name: "r", jwt: { issuer: "https://i", jwksURI: "https:///jwks" }, to: [{ api: "orders" }] }),
    expect: reject("jwksURI must be an absolute https URL"),
  },
  {
    name: "rejects a clock skew over 300 seconds",
    spec: withRules({ name: "r", jwt: { issuer: "https://i", jwksURI: "https://i/jwks", clockSkewSeconds: 301 }, to: [{ api: "orders" }] }),
    expect: reject("clockSkewSeconds"),
  },
  {
    name: "rejects a JWT requirement without an issuer",
    spec: withRules({ name: "r", jwt: { jwksURI: "https://i/jwks" }, to: [{ api: "orders" }] }),
    expect: reject("issuer: Required value"),
  },
  {
    name: "accepts a JWT requirement with a jwksURI, audiences, scopes and claims",
    spec: withRules({
      name: "r",
      jwt: {
        issuer: "https://i",
        audiences: ["orders"],
        jwksURI: "https://i.example/.well-known/jwks.json",
        requiredScopes: ["orders.read"],
        requiredClaims: [{ name: "tenant", values: ["acme"] }, { name: "sub" }],
      },
      to: [{ api: "orders" }],
    }),
    expect: "accept",
  },
  {
    name: "rejects two targets for the same API in one rule",
    spec: withRules({ name: "r", to: [{ api: "orders" }, { api: "orders", scopes: ["read"] }] }),
    expect: reject("Duplicate value"),
  },
];

// ---- RuntimeRule

const all = {};
const exemption = (id: string, expires: string, reason: string, extra: Record<string, unknown> = {}) => ({ id, expires, reason, ...extra });
const detection = (d: Record<string, unknown>) => ({ selector: all, detection: d });

const runtimeRuleCases: Case[] = [
  { name: "accepts a rule with only an empty selector", spec: { selector: all }, expect: "accept" },
  { name: "rejects a rule without a selector", spec: { enforcement: "audit" }, expect: reject("spec.selector: Required value") },
  { name: "rejects an unknown enforcement mode", spec: { selector: all, enforcement: "warn" }, expect: reject("Unsupported value") },
  { name: "rejects a negative vulnerability threshold", spec: { selector: all, vulnerabilities: { thresholds: { critical: -1 } } }, expect: reject("critical") },
  {
    name: "rejects an exemption id that is not a CVE or GHSA id",
    spec: { selector: all, vulnerabilities: { exemptions: [exemption("CVE-24-1", "2026-01-01T00:00:00Z", "x")] } },
    expect: reject("exemptions[0].id"),
  },
  {
    name: "accepts GHSA and CVE exemptions, one limited to an image prefix",
    spec: {
      selector: all,
      vulnerabilities: {
        exemptions: [
          exemption("GHSA-jfh8-c2jp-5v3q", "2026-01-01T00:00:00Z", "x"),
          exemption("CVE-2021-44228", "2026-01-01T00:00:00Z", "other", { images: ["ghcr.io/acme/"] }),
        ],
      },
    },
    expect: "accept",
  },
  {
    name: "rejects an exemption without an expiry",
    spec: { selector: all, vulnerabilities: { exemptions: [{ id: "CVE-2021-44228", reason: "x" }] } },
    expect: reject("expires: Required value"),
  },
  {
    name: "rejects an exemption expiry that is not a timestamp",
    spec: { selector: all, vulnerabilities: { exemptions: [exemption("CVE-2021-44228", "tomorrow", "x")] } },
    expect: reject("expires"),
  },
  {
    name: "rejects two exemptions for the same id",
    spec: {
      selector: all,
      vulnerabilities: {
        exemptions: [exemption("CVE-2021-44228", "2026-01-01T00:00:00Z", "x"), exemption("CVE-2021-44228", "2027-01-01T00:00:00Z", "other")],
      },
    },
    expect: reject("Duplicate value"),
  },
  { name: "rejects an unknown unscannedImages policy", spec: { selector: all, vulnerabilities: { unscannedImages: "block" } }, expect: reject("Unsupported value") },
  {
    name: "rejects a capability written with the CAP_ prefix",
    spec: { selector: all, podSecurity: { allowedCapabilities: ["CAP_NET_ADMIN"] } },
    expect: reject("without the CAP_ prefix"),
  },
  { name: "rejects a lowercase capability", spec: { selector: all, podSecurity: { allowedCapabilities: ["net_admin"] } }, expect: reject("allowedCapabilities") },
  { name: "rejects a relative host path", spec: { selector: all, podSecurity: { allowedHostPaths: ["var/log"] } }, expect: reject("allowedHostPaths") },
  { name: "rejects a registry given as a URL", spec: { selector: all, podSecurity: { allowedRegistries: ["https://ghcr.io"] } }, expect: reject("allowedRegistries") },
  {
    name: "accepts registries with a port and a repository prefix",
    spec: { selector: all, podSecurity: { allowedRegistries: ["ghcr.io", "registry.example.com:5000/team", "docker.io/library"] } },
    expect: "accept",
  },
  { name: "rejects an unknown signal source", spec: detection({ signals: [{ name: "s", source: "tetragon" }] }), expect: reject("Unsupported value") },
  { name: "rejects a priority that is no comparison", spec: detection({ signals: [{ name: "s", source: "falco", priority: "~warning" }] }), expect: reject("priority") },
  { name: "accepts priority comparisons", spec: detection({ signals: [{ name: "a", source: "falco", priority: ">=warning" }, { name: "b", source: "falco", priority: "<notice" }] }), expect: "accept" },
  { name: "rejects In without values", spec: detection({ signals: [{ name: "s", source: "falco", fields: [{ field: "proc.name", operator: "In" }] }] }), expect: reject("values must be non-empty for In") },
  { name: "rejects a response naming an undefined signal", spec: detection({ signals: [{ name: "s", source: "falco" }], responses: [{ name: "r", on: ["t"], action: "alert" }] }), expect: reject("every name in responses[].on must be a signal or a correlation") },
  { name: "rejects an unknown response action", spec: detection({ signals: [{ name: "s", source: "falco" }], responses: [{ name: "r", on: ["s"], action: "kill" }] }), expect: reject("Unsupported value") },
  { name: "rejects maxQuarantinedPercent on an alert", spec: detection({ signals: [{ name: "s", source: "falco" }], responses: [{ name: "r", on: ["s"], action: "alert", maxQuarantinedPercent: 50 }] }), expect: reject("maxQuarantinedPercent applies to the quarantine action only") },
  { name: "rejects a cooldown over 24h", spec: detection({ signals: [{ name: "s", source: "falco" }], responses: [{ name: "r", on: ["s"], action: "alert", cooldown: "25h" }] }), expect: reject("cooldown must be at most 24h") },
  { name: "rejects value_count without a field", spec: detection({ signals: [{ name: "s", source: "falco" }], correlations: [{ name: "c", type: "value_count", signals: ["s"], timespan: "1m", condition: { gte: 2 } }] }), expect: reject("field is required for value_count") },
  { name: "rejects event_count without a condition", spec: detection({ signals: [{ name: "s", source: "falco" }], correlations: [{ name: "c", type: "event_count", signals: ["s"], timespan: "1m" }] }), expect: reject("condition (gte) is required") },
  { name: "rejects temporal_ordered with one signal", spec: detection({ signals: [{ name: "s", source: "falco" }], correlations: [{ name: "c", type: "temporal_ordered", signals: ["s"], timespan: "1m" }] }), expect: reject("temporal_ordered needs at least two signals") },
  { name: "rejects a timespan over 24h with the CEL message", spec: detection({ signals: [{ name: "s", source: "falco" }], correlations: [{ name: "c", type: "event_count", signals: ["s"], timespan: "25h", condition: { gte: 2 } }] }), expect: reject("timespan must be between 1s and 24h, got 25h") },
  { name: "rejects a correlation of an undefined signal", spec: detection({ signals: [{ name: "s", source: "falco" }], correlations: [{ name: "c", type: "event_count", signals: ["x"], timespan: "1m", condition: { gte: 2 } }] }), expect: reject("every name in correlations[].signals") },
  { name: "rejects a correlation named like a signal", spec: detection({ signals: [{ name: "s", source: "falco" }], correlations: [{ name: "s", type: "event_count", signals: ["s"], timespan: "1m", condition: { gte: 2 } }] }), expect: reject("a correlation cannot") },
  {
    name: "accepts a shell, then five API denials from one identity within 5 minutes, quarantined",
    spec: detection({
      signals: [{ name: "shell", source: "falco", rules: ["Terminal shell in container"], priority: ">=warning" }, { name: "denied", source: "enforcer", rules: ["APIDenied"] }],
      correlations: [{ name: "denials", type: "event_count", signals: ["denied"], timespan: "5m", condition: { gte: 5 } }, { name: "shell-then-denials", type: "temporal_ordered", signals: ["shell", "denials"], timespan: "5m" }],
      responses: [{ name: "isolate", on: ["shell-then-denials"], action: "quarantine", maxQuarantinedPercent: 50 }],
    }),
    expect: "accept",
  },
];

const tables: [Kind, Case[]][] = [
  ["ServiceIdentity", serviceIdentityCases],
  ["APIPolicy", apiPolicyCases],
  ["RuntimeRule", runtimeRuleCases],
];

describe("CRD schemas (server-side dry-run, strict field validation)", function () {
  this.timeout(60_000);

  let ns: string;
  before(async () => {
    ns = await newNamespace("schema");
  });

  async function dryRunCreate(kind: Kind, spec: Case["spec"]) {
    const { kube } = await cluster();
    const obj = { apiVersion: "tenet.dev/v1alpha1", kind, metadata: { name: "t", namespace: ns }, spec };
    return kube.create(resourcePath(resources[kind], ns), obj, { dryRun: "All", fieldValidation: "Strict" });
  }

  for (const [kind, cases] of tables) {
    describe(kind, () => {
      for (const c of cases) {
        it(c.name, async () => {
          const { expect } = c;
          if (expect === "accept") {
            const created = await dryRunCreate(kind, c.spec);
            assert.equal(created.kind, kind);
            return;
          }
          await assert.rejects(dryRunCreate(kind, c.spec), (e: unknown) => {
            assert.ok(e instanceof KubeError, `expected a KubeError, got ${e}`);
            assert.equal(e.code, 422, e.message);
            assert.ok(e.message.includes(expect.reject), `expected ${JSON.stringify(expect.reject)} in: ${e.message}`);
            return true;
          });
        });
      }
    });
  }
});
