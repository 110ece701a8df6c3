// Enforcer injection and the diffing JSON patch: golden patches for real-looking pods (set
// UPDATE_GOLDEN=1 to rewrite test/golden/inject/*.patch.json after an intended change), the
// opt-in table, conflicts, idempotence, and round-trips through a strict patch applier.
import { strict as assert } from "node:assert";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { InjectionError, injectPod, PEERS_ANNOTATION, shouldInject, type InjectDecision, type InjectionConfig } from "../../admission/inject.ts";
import { ENFORCER_CONTAINER } from "../../common/names.ts";
import { applyPatch, jsonPatch, PatchError, type Operation } from "../../admission/patch.ts";
import { testInjectionConfig } from "../harness/injection.ts";

const GOLDEN_DIR = path.resolve(import.meta.dirname, "../golden/inject");
const REVIEW_FIXTURE = path.resolve(import.meta.dirname, "../fixtures/admission/admissionreview-v1-pod-create.json");
const UPDATE = process.env.UPDATE_GOLDEN === "1";

const cfg: InjectionConfig = testInjectionConfig;

// Fixtures are parsed once and deep-cloned per use, so no test can leak edits into another.
const parsed = new Map<string, unknown>();
function fixture(file: string, pick: (raw: any) => any = (raw) => raw): any {
  if (!parsed.has(file)) parsed.set(file, JSON.parse(readFileSync(file, "utf8")));
  return structuredClone(pick(parsed.get(file)));
}
const goldenPod = (name: string) => fixture(path.join(GOLDEN_DIR, `${name}.input.json`));
const reviewPod = () => fixture(REVIEW_FIXTURE, (review) => review.request.object);

function matchGolden(name: string, patch: Operation[]): void {
  const file = path.join(GOLDEN_DIR, `${name}.patch.json`);
  const text = JSON.stringify(patch, null, 2) + "\n";
  if (UPDATE) writeFileSync(file, text);
  assert.ok(existsSync(file), `missing golden file ${file}: run with UPDATE_GOLDEN=1 to create it`);
  assert.deepEqual(patch, JSON.parse(readFileSync(file, "utf8")), `${name}.patch.json differs: run with UPDATE_GOLDEN=1 if the change is intended`);
}

const enforcerOf = (pod: any) => pod.spec.initContainers.find((c: any) => c.name === ENFORCER_CONTAINER);
const envOf = (pod: any) => Object.fromEntries(enforcerOf(pod).env.map((e: any) => [e.name, e.value ?? e.valueFrom.fieldRef.fieldPath]));

interface GoldenCase {
  name: string; // golden file base name
  title: string;
  load: () => any;
  check?: (input: any, out: any) => void;
}

const cases: GoldenCase[] = [
  {
    name: "deployment-pod",
    title: "injects the enforcer into a plain single-container Deployment pod",
    load: () => goldenPod("deployment-pod"),
    check: (input, out) => {
      assert.equal(out.spec.initContainers.length, 1);
      assert.deepEqual(out.spec.containers, input.spec.containers);
      assert.equal(out.metadata.name, undefined, "a pod from generateName gets no name from us");
      assert.equal(envOf(out).TENET_APP_PORT, "8080");
    },
  },
  {
    name: "init-containers-and-volumes",
    title: "puts the sidecar before the existing init containers and keeps every existing volume",
    load: () => goldenPod("init-containers-and-volumes"),
    check: (input, out) => {
      assert.deepEqual(out.spec.initContainers.map((c: any) => c.name), [ENFORCER_CONTAINER, "migrate", "warm-cache"]);
      assert.deepEqual(out.spec.initContainers.slice(1), input.spec.initContainers);
      assert.deepEqual(out.spec.volumes.slice(0, 2), input.spec.volumes);
      assert.deepEqual(out.spec.volumes.map((v: any) => v.name), ["config", "cache", "tenet-token", "tenet-trust-bundle"]);
    },
  },
  {
    name: "job-pod",
    title: "injects a Job pod (restartPolicy Never) as a native sidecar, which does not keep the Job running",
    load: () => goldenPod("job-pod"),
    check: (input, out) => {
      assert.equal(out.spec.restartPolicy, "Never");
      // A regular container would keep the pod Running after the job's container exits;
      // an init container with restartPolicy Always is stopped by the kubelet instead.
      assert.deepEqual(out.spec.containers, input.spec.containers);
      assert.equal(out.spec.initContainers[0].name, ENFORCER_CONTAINER);
      assert.equal(out.spec.initContainers[0].restartPolicy, "Always");
      assert.deepEqual(out.metadata.finalizers, input.metadata.finalizers);
      assert.equal(envOf(out).TENET_APP_PORT, "8080");
    },
  },
  {
    name: "pod-security-context",
    title: "keeps a pod-level securityContext exactly as it was",
    load: () => goldenPod("pod-security-context"),
    check: (input, out) => {
      assert.deepEqual(out.spec.securityContext, input.spec.securityContext);
      assert.deepEqual(out.spec.containers[0].securityContext, input.spec.containers[0].securityContext);
      assert.equal(enforcerOf(out).securityContext.runAsUser, 15900);
    },
  },
  {
    name: "app-port-annotation",
    title: "takes the app port from the tenet.dev/app-port annotation over any containerPort",
    load: () => goldenPod("app-port-annotation"),
    check: (_input, out) => assert.equal(envOf(out).TENET_APP_PORT, "9090"),
  },
  {
    name: "app-port-container",
    title: "takes the app port from the first containerPort of the first app container",
    load: () => goldenPod("app-port-container"),
    check: (_input, out) => assert.equal(envOf(out).TENET_APP_PORT, "3000"),
  },
  {
    name: "app-port-default",
    title: "defaults the app port to 8080 when the pod declares no port",
    load: () => goldenPod("app-port-default"),
    check: (_input, out) => assert.equal(envOf(out).TENET_APP_PORT, "8080"),
  },
  {
    name: "admission-review-pod",
    title: "injects the pod of a full AdmissionReview as an API server sends it (managedFields, last-applied annotation)",
    load: reviewPod,
    check: (input, out) => {
      assert.deepEqual(out.spec.volumes[0], input.spec.volumes[0]);
      assert.equal(out.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"], input.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]);
      assert.deepEqual(out.metadata.managedFields, input.metadata.managedFields);
    },
  },
];

describe("enforcer injection", () => {
  describe("golden patches", () => {
    for (const c of cases) {
      it(c.title, () => {
        const input = c.load();
        const before = structuredClone(input);
        const out = injectPod(input, cfg);
        assert.deepEqual(input, before, "injectPod must not touch its input");
        c.check?.(input, out);
        matchGolden(c.name, jsonPatch(input, out));
      });
    }

    it("has a test case for every golden input file", () => {
      const named = new Set([...cases.map((c) => c.name), "volume-named-tenet-token"]);
      const inputs = readdirSync(GOLDEN_DIR).filter((f) => f.endsWith(".input.json")).map((f) => f.replace(/\.input\.json$/, ""));
      assert.deepEqual(inputs.filter((n) => !named.has(n)), []);
    });
  });

  describe("round-trips and idempotence", () => {
    for (const c of cases) {
      it(`applies the patch for ${c.name} cleanly and yields exactly injectPod's output`, () => {
        const input = c.load();
        const out = injectPod(input, cfg);
        assert.deepEqual(applyPatch(input, jsonPatch(input, out)), out);
      });

      it(`injects ${c.name} twice with the same result as once, and patches an injected pod with []`, () => {
        const once = injectPod(c.load(), cfg);
        const twice = injectPod(once, cfg);
        assert.deepEqual(twice, once);
        assert.deepEqual(jsonPatch(once, twice), []);
        assert.deepEqual(shouldInject(once, { "tenet.dev/inject": "enabled" }, "shop"), { inject: false, reason: "AlreadyInjected" });
      });
    }

    it("moves a misplaced enforcer back to the front instead of adding a second one", () => {
      const once = injectPod(goldenPod("init-containers-and-volumes"), cfg);
      once.spec.initContainers.push(once.spec.initContainers.shift());
      const again = injectPod(once, cfg);
      assert.deepEqual(again.spec.initContainers.map((c: any) => c.name), [ENFORCER_CONTAINER, "migrate", "warm-cache"]);
      assert.deepEqual(again, injectPod(goldenPod("init-containers-and-volumes"), cfg));
    });
  });

  describe("the enforcer container", () => {
    const out = () => injectPod(goldenPod("deployment-pod"), cfg);

    it("runs as the first init container with restartPolicy Always", () => {
      const first = out().spec.initContainers[0];
      assert.equal(first.name, ENFORCER_CONTAINER);
      assert.equal(first.restartPolicy, "Always");
      assert.equal(first.image, "tenet.local/tenet-enforcer:dev");
      assert.equal(first.args, undefined, "the image's entrypoint runs the enforcer");
    });

    it("gets its pod identity, CA endpoint, token, bundle and ports through the environment", () => {
      assert.deepEqual(envOf(out()), {
        POD_NAME: "metadata.name",
        POD_NAMESPACE: "metadata.namespace",
        POD_UID: "metadata.uid",
        SERVICE_ACCOUNT: "spec.serviceAccountName",
        TENET_CA_ENDPOINT: "https://tenet-operator.tenet-system.svc:443",
        TENET_TOKEN_FILE: "/var/run/secrets/tenet.dev/token/token",
        TENET_BUNDLE_FILE: "/var/run/secrets/tenet.dev/bundle/ca.crt",
        TENET_REVOCATIONS_URL: "https://tenet-operator.tenet-system.svc:443/v1/revocations",
        TENET_INBOUND_PORT: "15443",
        TENET_OUTBOUND_PORT: "15001",
        TENET_HEALTH_PORT: "15021",
        TENET_APP_PORT: "8080",
      });
    });

    it("builds the revocations URL without a double slash when the CA endpoint ends in /", () => {
      const pod = injectPod(goldenPod("deployment-pod"), { ...cfg, caEndpoint: "https://ca.example:8443/" });
      assert.equal(envOf(pod).TENET_REVOCATIONS_URL, "https://ca.example:8443/v1/revocations");
    });

    it("probes /ready for startup and readiness and /live for liveness on the health port", () => {
      const e = enforcerOf(out());
      assert.deepEqual(e.startupProbe.httpGet, { path: "/ready", port: 15021 });
      assert.deepEqual(e.readinessProbe.httpGet, { path: "/ready", port: 15021 });
      assert.deepEqual(e.livenessProbe.httpGet, { path: "/live", port: 15021 });
      assert.deepEqual(e.ports.map((p: any) => [p.name, p.containerPort]), [["tenet-mtls", 15443], ["tenet-health", 15021]]);
    });

    it("runs locked down: non-root, as the fixed UID capture leaves alone (15900), read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp", () => {
      assert.deepEqual(enforcerOf(out()).securityContext, {
        runAsNonRoot: true,
        runAsUser: 15900,
        runAsGroup: 15900,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ["ALL"] },
        seccompProfile: { type: "RuntimeDefault" },
      });
    });

    it("takes its resources from the config, as a copy", () => {
      const pod = out();
      assert.deepEqual(enforcerOf(pod).resources, cfg.resources);
      assert.notEqual(enforcerOf(pod).resources, cfg.resources);
    });

    it("mounts a projected token for audience tenet and the trust bundle ConfigMap, read-only", () => {
      const pod = out();
      assert.deepEqual(enforcerOf(pod).volumeMounts, [
        { name: "tenet-token", mountPath: "/var/run/secrets/tenet.dev/token", readOnly: true },
        { name: "tenet-trust-bundle", mountPath: "/var/run/secrets/tenet.dev/bundle", readOnly: true },
      ]);
      assert.deepEqual(pod.spec.volumes.slice(-2), [
        { name: "tenet-token", projected: { sources: [{ serviceAccountToken: { audience: "tenet", expirationSeconds: 3600, path: "token" } }] } },
        { name: "tenet-trust-bundle", configMap: { name: "tenet-trust-bundle" } },
      ]);
    });

    it("marks the pod with the injector version annotation and the enforcer label, keeping the others", () => {
      const pod = out();
      assert.deepEqual(pod.metadata.annotations, { "kubectl.kubernetes.io/restartedAt": "2026-01-10T08:00:00Z", "tenet.dev/injected": "0.1.0" });
      assert.deepEqual(pod.metadata.labels, { "app.kubernetes.io/name": "orders", "pod-template-hash": "7d9c6b5f4", "tenet.dev/enforcer": "injected" });
    });
  });

  describe("outbound peers (annotation tenet.dev/peers)", () => {
    const withPeers = (value: unknown) => {
      const pod = goldenPod("deployment-pod");
      pod.metadata.annotations = { ...pod.metadata.annotations, [PEERS_ANNOTATION]: value };
      return pod;
    };
    const peersEnv = (pod: any) => pod.spec.initContainers[0].env.find((e: any) => e.name === "TENET_PEERS")?.value;

    it("passes the annotation to the enforcer as TENET_PEERS", () => {
      const peers = JSON.stringify({ "orders.demo.svc": "spiffe://cluster.local/ns/demo/sa/orders" });
      assert.equal(peersEnv(injectPod(withPeers(peers), cfg)), peers);
    });
    it("sets no TENET_PEERS without the annotation", () => {
      assert.equal(peersEnv(injectPod(goldenPod("deployment-pod"), cfg)), undefined);
    });
    for (const [what, value] of [
      ["not JSON", "{orders"],
      ["a JSON array", "[]"],
      ["oversized", JSON.stringify({ x: "y".repeat(20_000) })],
    ] as const) {
      it(`refuses an annotation that is ${what}, naming the annotation`, () => {
        assert.throws(() => injectPod(withPeers(value), cfg), (e: Error) => e instanceof InjectionError && e.message.includes(PEERS_ANNOTATION));
      });
    }
  });

  describe("conflicts", () => {
    const rejects = (pod: any, pattern: RegExp) =>
      assert.throws(() => injectPod(pod, cfg), (err: unknown) => {
        assert.ok(err instanceof InjectionError, `expected an InjectionError, got ${err}`);
        assert.match(err.message, pattern);
        return true;
      });

    it("refuses a pod that already has its own volume named tenet-token, naming the volume", () => {
      rejects(goldenPod("volume-named-tenet-token"), /volume named "tenet-token"/);
    });

    it("refuses an app container that mounts tenet-token, which would hand it the enforcer's credential", () => {
      const pod = goldenPod("deployment-pod");
      pod.spec.containers[0].volumeMounts.push({ name: "tenet-token", mountPath: "/steal" });
      rejects(pod, /container "orders" has a volumeMount named "tenet-token"/);
    });

    it("refuses even on an already-injected pod an app container that mounts tenet-token", () => {
      const pod = injectPod(goldenPod("deployment-pod"), cfg);
      pod.spec.containers[0].volumeMounts.push({ name: "tenet-token", mountPath: "/steal" });
      rejects(pod, /volumeMount named "tenet-token"/);
    });

    it("refuses a regular container named tenet-enforcer", () => {
      const pod = goldenPod("app-port-default");
      pod.spec.containers.push({ name: ENFORCER_CONTAINER, image: "impostor:latest" });
      rejects(pod, /"tenet-enforcer" is reserved/);
    });

    it("refuses an app container that listens on one of the enforcer's ports", () => {
      const pod = goldenPod("app-port-default");
      pod.spec.containers[0].ports = [{ containerPort: 8080 }, { containerPort: 15001 }];
      rejects(pod, /uses port 15001, which the Tenet enforcer needs for its outbound proxy listener/);
    });

    it("refuses an app port annotation that points at an enforcer port", () => {
      const pod = goldenPod("app-port-default");
      pod.metadata.annotations = { "tenet.dev/app-port": "15443" };
      rejects(pod, /app port 15443 is the Tenet enforcer's inbound mTLS port/);
    });

    for (const bad of ["http", "0", "65536", "80a", "-1", ""]) {
      it(`refuses the app port annotation ${JSON.stringify(bad)}, which is not a port number`, () => {
        const pod = goldenPod("app-port-default");
        pod.metadata.annotations = { "tenet.dev/app-port": bad };
        rejects(pod, /tenet\.dev\/app-port is .* not a port number/);
      });
    }

    it("refuses a pod without spec.containers", () => {
      rejects({ metadata: { generateName: "x-" } }, /no spec\.containers/);
    });
  });

  describe("shouldInject", () => {
    const pod = (annotations?: Record<string, string>, spec: Record<string, unknown> = {}) => ({
      metadata: { generateName: "p-", ...(annotations ? { annotations } : {}) },
      spec: { containers: [{ name: "app", image: "app:1" }], ...spec },
    });
    const enabled = { "tenet.dev/inject": "enabled" };
    const yes: InjectDecision = { inject: true };
    const no = (reason: Extract<InjectDecision, { inject: false }>["reason"]): InjectDecision => ({ inject: false, reason });
    const table: [string, any, Record<string, string>, string, InjectDecision][] = [
      ["injects a pod in a namespace labelled tenet.dev/inject=enabled", pod(), enabled, "shop", yes],
      ["injects a pod annotated tenet.dev/inject: \"true\" in an unlabelled namespace", pod({ "tenet.dev/inject": "true" }), {}, "shop", yes],
      ["reads the annotation without regard to case or surrounding spaces", pod({ "tenet.dev/inject": " True " }), {}, "shop", yes],
      ["leaves a pod alone when neither its namespace nor the pod opted in", pod(), {}, "shop", no("NotOptedIn")],
      ["does not take a namespace label other than enabled as an opt-in", pod(), { "tenet.dev/inject": "true" }, "shop", no("NotOptedIn")],
      ["does not take an unknown annotation value as an opt-in", pod({ "tenet.dev/inject": "yes" }), {}, "shop", no("NotOptedIn")],
      ["lets the pod's opt-out annotation win over the namespace label", pod({ "tenet.dev/inject": "false" }), enabled, "shop", no("OptedOut")],
      ["never injects in kube-system, whatever the pod asks", pod({ "tenet.dev/inject": "true" }), { ...enabled, "kubernetes.io/metadata.name": "kube-system" }, "kube-system", no("ExemptNamespace")],
      ["never injects in tenet-system, whatever the pod asks", pod({ "tenet.dev/inject": "true" }), enabled, "tenet-system", no("ExemptNamespace")],
      ["exempts by the immutable kubernetes.io/metadata.name label too", pod({ "tenet.dev/inject": "true" }), { "kubernetes.io/metadata.name": "kube-system" }, "", no("ExemptNamespace")],
      ["refuses a hostNetwork pod that opted in", pod({ "tenet.dev/inject": "true" }, { hostNetwork: true }), {}, "shop", no("HostNetwork")],
      ["reports a hostNetwork pod that did not opt in as not opted in", pod(undefined, { hostNetwork: true }), {}, "shop", no("NotOptedIn")],
      ["skips a pod that already has the enforcer init container", injectPod(pod(), cfg), enabled, "shop", no("AlreadyInjected")],
      ["handles a pod with no metadata at all", { spec: { containers: [] } }, enabled, "shop", yes],
    ];
    for (const [title, p, labels, ns, want] of table) {
      it(title, () => assert.deepEqual(shouldInject(p, labels, ns), want));
    }
  });
});

describe("jsonPatch", () => {
  it("emits values exactly as a JSON round trip would: undefined dropped or null, -0 and NaN as JSON writes them, an own __proto__ member kept as a member", () => {
    const value: any = { a: undefined, b: [1, undefined, -0, NaN, Infinity], c: new Date(0), d: { e: "x", f: () => 1 }, g: -0 };
    Object.defineProperty(value, "__proto__", { value: { polluted: true }, enumerable: true, writable: true, configurable: true });
    const [op] = jsonPatch({}, { v: value }) as any[];
    assert.deepEqual(op.value, JSON.parse(JSON.stringify(value)));
    assert.equal(JSON.stringify(op.value), JSON.stringify(value));
    assert.equal(({} as any).polluted, undefined);
    assert.equal(Object.getPrototypeOf(op.value), Object.prototype, "the copy's prototype is untouched");
  });

  it("escapes / in tenet.dev/injected as ~1 in the JSON Pointer", () => {
    const input = goldenPod("deployment-pod");
    const ops = jsonPatch(input, injectPod(input, cfg));
    assert.ok(ops.some((o) => o.op === "add" && o.path === "/metadata/annotations/tenet.dev~1injected" && o.value === "0.1.0"), JSON.stringify(ops));
    assert.ok(ops.some((o) => o.op === "add" && o.path === "/metadata/labels/tenet.dev~1enforcer"));
  });

  it("escapes ~ as ~0 before / as ~1, and the applier decodes them back", () => {
    const ops = jsonPatch({ a: {} }, { a: { "x~1/y": 1 } });
    assert.deepEqual(ops, [{ op: "add", path: "/a/x~01~1y", value: 1 }]);
    assert.deepEqual(applyPatch({ a: {} }, ops), { a: { "x~1/y": 1 } });
  });

  it("adds a whole map when the parent is missing, never a path below it", () => {
    assert.deepEqual(jsonPatch({ metadata: {} }, { metadata: { annotations: { "a/b": "1" } } }), [
      { op: "add", path: "/metadata/annotations", value: { "a/b": "1" } },
    ]);
  });

  it("appends at /- when an array only grew at the end", () => {
    assert.deepEqual(jsonPatch({ v: [1, 2] }, { v: [1, 2, 3, 4] }), [
      { op: "add", path: "/v/-", value: 3 },
      { op: "add", path: "/v/-", value: 4 },
    ]);
  });

  it("inserts at index 0 when an element was prepended", () => {
    assert.deepEqual(jsonPatch({ v: [{ n: "a" }] }, { v: [{ n: "s" }, { n: "a" }] }), [{ op: "add", path: "/v/0", value: { n: "s" } }]);
  });

  it("removes from the highest index down", () => {
    assert.deepEqual(jsonPatch({ v: [1, 2, 3, 4] }, { v: [1, 4] }), [
      { op: "remove", path: "/v/2" },
      { op: "remove", path: "/v/1" },
    ]);
  });

  it("edits elements in place when an array kept its length", () => {
    assert.deepEqual(jsonPatch({ v: [{ a: 1 }, { b: 2 }] }, { v: [{ a: 1 }, { b: 3 }] }), [{ op: "replace", path: "/v/1/b", value: 3 }]);
  });

  it("replaces the whole array when elements were both removed and inserted", () => {
    assert.deepEqual(jsonPatch({ v: [1, 2, 3] }, { v: [9, 3, 8, 7] }), [{ op: "replace", path: "/v", value: [9, 3, 8, 7] }]);
  });

  it("treats undefined properties as absent, as JSON does", () => {
    assert.deepEqual(jsonPatch({ a: 1, b: undefined }, { a: 1 }), []);
    assert.deepEqual(jsonPatch({ a: 1 }, { a: 1, b: undefined }), []);
  });

  it("does not alias the mutated object in its operations", () => {
    const mutated = { v: { deep: [1] } };
    const [op] = jsonPatch({}, mutated) as { value: any }[];
    op.value.deep.push(2);
    assert.deepEqual(mutated, { v: { deep: [1] } });
  });

  it("replaces the root when the types differ, and returns [] for equal documents", () => {
    assert.deepEqual(jsonPatch([1], { a: 1 }), [{ op: "replace", path: "", value: { a: 1 } }]);
    assert.deepEqual(jsonPatch({ a: [1, { b: null }] }, { a: [1, { b: null }] }), []);
  });

  it("round-trips 2,000 random documents and random edits of them through applyPatch", () => {
    const rand = mulberry32(0x7e4e7);
    for (let i = 0; i < 2000; i++) {
      const a = randomJson(rand, 4);
      const b = randomEdit(rand, structuredClone(a), 3);
      const ops = jsonPatch(a, b);
      assert.deepEqual(applyPatch(a, ops), b, `case ${i}: ${JSON.stringify({ a, b, ops })}`);
    }
  });
});

describe("applyPatch", () => {
  const fails = (doc: unknown, ops: Operation[], pattern: RegExp) => assert.throws(() => applyPatch(doc, ops), (e: unknown) => e instanceof PatchError && pattern.test(e.message));

  it("refuses to add below a missing parent", () => fails({}, [{ op: "add", path: "/a/b", value: 1 }], /no member "a"/));
  it("refuses an array index past the end", () => fails({ v: [1] }, [{ op: "add", path: "/v/2", value: 1 }], /out of range/));
  it("refuses to remove or replace a member that is not there", () => {
    fails({}, [{ op: "remove", path: "/a" }], /no member "a"/);
    fails({ v: [] }, [{ op: "replace", path: "/v/0", value: 1 }], /out of range/);
  });
  it("refuses a malformed pointer or index", () => {
    fails({ v: [1] }, [{ op: "remove", path: "/v/01" }], /not an array index/);
    fails({}, [{ op: "add", path: "a", value: 1 }], /must be empty or start with \//);
    fails({}, [{ op: "add", path: "/a~2", value: 1 }], /~ must be followed by 0 or 1/);
  });
  it("leaves the input document untouched", () => {
    const doc = { v: [1], m: { a: 1 } };
    applyPatch(doc, [{ op: "add", path: "/v/-", value: 2 }, { op: "remove", path: "/m/a" }]);
    assert.deepEqual(doc, { v: [1], m: { a: 1 } });
  });
});

// A small seeded generator (mulberry32): the property test is random but reproducible.
function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEYS = ["a", "b", "name", "tenet.dev/inject", "x~y", "~1", "", "-", "0", "spec"];
const pick = <T>(rand: () => number, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];

function randomJson(rand: () => number, depth: number): any {
  const r = rand();
  if (depth <= 0 || r < 0.35) return pick(rand, [null, true, false, 0, 1, -2.5, "", "s", "tenet", "a/b"]);
  if (r < 0.65) return Array.from({ length: Math.floor(rand() * 5) }, () => randomJson(rand, depth - 1));
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(rand() * 5); i > 0; i--) o[pick(rand, KEYS)] = randomJson(rand, depth - 1);
  return o;
}

function randomEdit(rand: () => number, v: any, depth: number): any {
  if (depth <= 0 || rand() < 0.15) return randomJson(rand, 2);
  if (Array.isArray(v)) {
    const times = 1 + Math.floor(rand() * 3);
    for (let i = 0; i < times; i++) {
      const r = rand();
      const at = Math.floor(rand() * (v.length + 1));
      if (r < 0.3) v.splice(at, 0, randomJson(rand, 2));
      else if (r < 0.5 && v.length) v.splice(Math.min(at, v.length - 1), 1);
      else if (r < 0.6) v.unshift(randomJson(rand, 2));
      else if (r < 0.7) v.push(randomJson(rand, 2));
      else if (v.length) v[Math.min(at, v.length - 1)] = randomEdit(rand, v[Math.min(at, v.length - 1)], depth - 1);
    }
    return v;
  }
  if (v !== null && typeof v === "object") {
    const keys = Object.keys(v);
    const times = 1 + Math.floor(rand() * 3);
    for (let i = 0; i < times; i++) {
      const r = rand();
      if (r < 0.3 && keys.length) delete v[pick(rand, keys)];
      else if (r < 0.6) v[pick(rand, KEYS)] = randomJson(rand, 2);
      else if (keys.length) {
        const k = pick(rand, keys);
        if (Object.hasOwn(v, k)) v[k] = randomEdit(rand, v[k], depth - 1);
      }
    }
    return v;
  }
  return rand() < 0.5 ? v : randomJson(rand, 2);
}
