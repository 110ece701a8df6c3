import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import path from "node:path";
import { resourcePath, Resources, type Kube } from "../../common/kube.ts";
import { cluster, newNamespace, operatorKubeconfig, repoRoot } from "../harness/controlplane.ts";
import { waitFor } from "../harness/exec.ts";
import { OperatorProcess } from "../harness/operator.ts";
import { httpsRequest } from "../harness/pki.ts";
import { createObject, eventsFor, pod, tenet, vulnerabilityReport } from "./helpers.ts";

const VR = { group: "aquasecurity.github.io", version: "v1alpha1", plural: "vulnerabilityreports" };
const DIGEST = "sha256:" + "b".repeat(64);

/** A VulnerabilityReport as Trivy Operator writes it (all fields its CRD requires). */
function deployment(name: string, image: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "app", image, ...extra }] } },
    },
  };
}

describe("admission webhooks called by the real API server", function () {
  this.timeout(120_000);
  let kube: Kube;
  let kubectl: Awaited<ReturnType<typeof cluster>>["kubectl"];
  let operator: OperatorProcess;
  let trust: string;

  const apply = (ns: string, obj: unknown) => kubectl(["apply", "-n", ns, "-f", "-"], { input: JSON.stringify(obj), allowFail: true });

  async function startOperator() {
    operator = await OperatorProcess.start({ kubeconfig: await operatorKubeconfig(), namespace: "tenet-system", identity: `adm-${Date.now()}`, env: { TENET_LEASE_NAME: `lease-adm-${Date.now()}`, TENET_CAPTURE: "false" } });
    await operator.waitForHTTPS();
    await operator.waitForLog("webhook configurations", (l) => l.msg === "webhook configurations applied");
    trust = (await kube.get(resourcePath(Resources.configMaps, "tenet-system", "tenet-trust-bundle"))).data["operator-ca.crt"]; // the operator's HTTPS
  }

  // Capture off: these tests address the enforcer as the first init container. The capture
  // container through the real API server is covered by the e2e tier (test/e2e/7-capture.test.ts,
  // under the examples' baseline RuntimeRule) and its judgement by test/unit/capture.test.ts.
  /** The API server picks up new webhook configurations asynchronously: probe until it calls us. */
  async function waitForInjection(ns: string) {
    await waitFor("the API server to call the mutating webhook", async () => {
      const p = await kube.create(resourcePath(Resources.pods, ns), pod(`probe-${Date.now()}`, {}), { dryRun: "All" });
      return p.spec.initContainers?.[0]?.name === "tenet-enforcer";
    }, 20_000, 250);
  }

  before(async () => {
    ({ kube, kubectl } = await cluster());
  });

  describe("injection", () => {
    let ns: string;
    beforeEach(async () => {
      ns = await newNamespace("inj");
      await kube.patch(resourcePath(Resources.namespaces, undefined, ns), "merge", { metadata: { labels: { "tenet.dev/inject": "enabled" } } });
      await startOperator();
      await waitForInjection(ns);
    });

    it("registers the webhooks with the serving CA as caBundle, never the workload CA (issue 11 item 2)", async () => {
      const cm = (await kube.get(resourcePath(Resources.configMaps, "tenet-system", "tenet-trust-bundle"))).data;
      assert.ok(cm["operator-ca.crt"], "the serving CA bundle is published");
      const workloadCAs = cm["ca.crt"].match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
      assert.ok(workloadCAs.length > 0);
      for (const plural of ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"]) {
        const cfg = await kube.get(resourcePath({ group: "admissionregistration.k8s.io", version: "v1", plural }, undefined, "tenet"));
        assert.ok(cfg.webhooks.length > 0);
        for (const w of cfg.webhooks) {
          const caBundle = Buffer.from(w.clientConfig.caBundle, "base64").toString("utf8");
          assert.equal(caBundle, cm["operator-ca.crt"], `${plural} ${w.name}: caBundle is the serving CA bundle`);
          for (const ca of workloadCAs) assert.ok(!caBundle.includes(ca), `${plural} ${w.name}: no workload CA in caBundle`);
        }
      }
      // And the API server, trusting only that, calls the webhook (waitForInjection above).
    });

    it("injects the enforcer as a native sidecar, with its token and trust bundle, into a pod of an opted-in namespace", async () => {
      const created = await kube.create(resourcePath(Resources.pods, ns), {
        ...pod("web-0", { app: "web" }),
        spec: { containers: [{ name: "app", image: "ghcr.io/acme/web:1", ports: [{ containerPort: 8080 }] }], initContainers: [{ name: "migrate", image: "ghcr.io/acme/migrate:1" }], volumes: [{ name: "data", emptyDir: {} }] },
      });
      const init = created.spec.initContainers;
      assert.equal(init[0].name, "tenet-enforcer", "the enforcer starts before every other container");
      assert.equal(init[0].restartPolicy, "Always", "a native sidecar: Jobs still complete");
      assert.equal(init[1].name, "migrate", "existing init containers are kept, after it");
      assert.equal(created.spec.containers.length, 1);
      assert.equal(created.spec.containers[0].name, "app");
      const token = created.spec.volumes.find((v: any) => v.name === "tenet-token");
      assert.equal(token.projected.sources[0].serviceAccountToken.audience, "tenet");
      assert.equal(created.spec.volumes.find((v: any) => v.name === "tenet-trust-bundle").configMap.name, "tenet-trust-bundle");
      assert.ok(created.spec.volumes.some((v: any) => v.name === "data"), "existing volumes are kept");
      assert.ok(created.metadata.annotations["tenet.dev/injected"]);
      assert.equal(await operator.metricSum("tenet_admission_requests_total", 'webhook="mutate"', 'reason="Injected"') >= 1, true);
    });

    it("judges the workload, not Tenet's own sidecar: an injected pod passes a rule that pins registries and digests", async () => {
      await createObject(kube, tenet("RuntimeRule", ns, "pinned", { selector: {}, enforcement: "enforce", podSecurity: { allowedRegistries: ["ghcr.io/acme"], requireDigest: true } }));
      const image = "ghcr.io/acme/web@sha256:" + "b".repeat(64);
      const compliant = { securityContext: { runAsNonRoot: true }, containers: [{ name: "app", image, securityContext: { allowPrivilegeEscalation: false } }] };
      const admitted = await waitFor("the rule to reach the webhook's cache", async () => {
        const bad = await kube.create(resourcePath(Resources.pods, ns), { ...pod("probe", {}), metadata: { generateName: "probe-" }, spec: { ...compliant, containers: [{ ...compliant.containers[0], image: "docker.io/library/nginx:1" }] } }, { dryRun: "All" }).then(() => "admitted", (e) => String(e));
        return /not from an allowed registry/.test(bad) ? true : undefined;
      });
      assert.ok(admitted);
      const p = await kube.create(resourcePath(Resources.pods, ns), { ...pod("pinned-0", {}), spec: compliant });
      assert.equal(p.spec.initContainers[0].name, "tenet-enforcer", "injected with Tenet's image, which the rule does not name");
      // A look-alike "enforcer" (another image, or Tenet's image with its own command and
      // privileges) is replaced by the real one: injection is level-based (issue 11 item 1).
      for (const [name, fake] of [
        ["fake", { name: "tenet-enforcer", image: "docker.io/evil/proxy:1", restartPolicy: "Always" }],
        ["fake-priv", { ...p.spec.initContainers[0], command: ["/bin/sh", "-c", "sleep 1d"], securityContext: { privileged: true, runAsUser: 0, capabilities: { add: ["SYS_ADMIN"] } } }],
      ] as const) {
        const replaced = await kube.create(resourcePath(Resources.pods, ns), { ...pod(name, {}), spec: { ...compliant, initContainers: [{ ...fake, volumeMounts: undefined }] } });
        const real = replaced.spec.initContainers.filter((c: any) => c.name === "tenet-enforcer");
        assert.equal(real.length, 1);
        assert.equal(real[0].image, p.spec.initContainers[0].image);
        assert.equal(real[0].command, undefined, `${name}: its own command is gone`);
        assert.deepEqual(real[0].securityContext, p.spec.initContainers[0].securityContext, `${name}: Tenet's securityContext`);
      }
    });

    it("judges a look-alike enforcer with Tenet's image where nothing injects: a privileged tenet-enforcer is refused (issue 11 item 1)", async () => {
      const plain = await newNamespace("lookalike");
      await createObject(kube, tenet("RuntimeRule", plain, "pinned", { selector: {}, enforcement: "enforce", podSecurity: { allowedRegistries: ["ghcr.io/acme"], allowPrivileged: false } }));
      const image = "ghcr.io/acme/web@sha256:" + "b".repeat(64);
      const compliant = { securityContext: { runAsNonRoot: true }, containers: [{ name: "app", image, securityContext: { allowPrivilegeEscalation: false } }] };
      await waitFor("the rule to reach the webhook's cache", async () => {
        const bad = await kube.create(resourcePath(Resources.pods, plain), { ...pod("probe", {}), metadata: { generateName: "probe-" }, spec: { ...compliant, containers: [{ ...compliant.containers[0], image: "docker.io/library/nginx:1" }] } }, { dryRun: "All" }).then(() => "admitted", (e) => String(e));
        return /not from an allowed registry/.test(bad) ? true : undefined;
      });
      const injected = await kube.create(resourcePath(Resources.pods, ns), { ...pod("model", {}), spec: compliant });
      const lookAlike = { ...injected.spec.initContainers[0], command: ["/bin/sh", "-c", "nsenter -t 1 -m sh"], securityContext: { privileged: true, runAsUser: 0, capabilities: { add: ["SYS_ADMIN"] } }, volumeMounts: undefined };
      const res = await kube.create(resourcePath(Resources.pods, plain), { ...pod("fake", {}), spec: { ...compliant, initContainers: [lookAlike] } }).then(() => "admitted", (e) => String(e));
      assert.match(res, /denied the request/);
      assert.match(res, /tenet-enforcer/);
    });

    it("is idempotent: re-admitting an injected pod changes nothing", async () => {
      const first = await kube.create(resourcePath(Resources.pods, ns), pod("once", { app: "x" }));
      const again = structuredClone(first);
      again.metadata = { name: "twice", labels: first.metadata.labels, annotations: first.metadata.annotations };
      delete again.status;
      const second = await kube.create(resourcePath(Resources.pods, ns), again);
      assert.equal(second.spec.initContainers.filter((c: any) => c.name === "tenet-enforcer").length, 1);
      assert.deepEqual(second.spec.initContainers, first.spec.initContainers);
      assert.deepEqual(second.spec.volumes, first.spec.volumes);
    });

    it("injects the pods of a Deployment applied with kubectl (created from its template, as its ReplicaSet would)", async () => {
      const d = deployment("shop", "ghcr.io/acme/shop:1");
      const res = await apply(ns, d);
      assert.equal(res.code, 0, res.stderr);
      const tpl = (await kube.get(`/apis/apps/v1/namespaces/${ns}/deployments/shop`)).spec.template;
      const replica = (spec: any) => kube.create(resourcePath(Resources.pods, ns), { apiVersion: "v1", kind: "Pod", metadata: { generateName: "shop-", labels: tpl.metadata.labels }, spec });
      const p = await replica(tpl.spec);
      assert.equal(p.spec.initContainers[0].name, "tenet-enforcer");
      // The API server's reviews have the shape the review cache keys (operator/admission/review-cache.ts):
      // replicas without the service-account token volume (its name is random per pod) are parsed once.
      const count = async (result: string) => (await operator.metrics()).get(`tenet_admission_review_cache_total{webhook="mutate",result="${result}"}`) ?? 0;
      const [hits, unkeyed] = [await count("hit"), await count("unkeyed")];
      const spec = { ...tpl.spec, automountServiceAccountToken: false };
      const a = await replica(spec);
      await replica(spec); // the second review of a template is kept, the third hits
      const b = await replica(spec);
      assert.deepEqual(b.spec.initContainers, a.spec.initContainers);
      assert.equal(b.spec.initContainers[0].name, "tenet-enforcer");
      assert.ok((await count("hit")) > hits, "the third replica's review is the first's but for its uid");
      assert.equal(await count("unkeyed"), unkeyed, "the API server writes reviews in the keyed shape");
      // With the token volume (random name per pod, added by the API server before the webhooks):
      // the replicas share one injection patch all the same (admission/token-volume.ts).
      const patchHits = async () => (await operator.metrics()).get(`tenet_admission_cache_total{cache="patch",result="hit"}`) ?? 0;
      const before = await patchHits();
      const withToken = await Promise.all([0, 1, 2].map(() => replica(tpl.spec)));
      await replica(tpl.spec);
      const last = await replica(tpl.spec);
      const tokenOf = (pod: any) => pod.spec.volumes.find((v: any) => v.name.startsWith("kube-api-access-"))?.name;
      assert.ok(tokenOf(last) && new Set([...withToken, last].map(tokenOf)).size === 4, "each replica got its own token volume");
      assert.ok((await patchHits()) > before, "replicas that differ only in their token volume's name hit the patch cache");
      // The API server mounts each pod's own token in the enforcer too (it reinvokes its plugins after the webhooks).
      const sidecars = (pod: any) => JSON.parse(JSON.stringify(pod.spec.initContainers).replaceAll(tokenOf(pod), "kube-api-access-<token>"));
      assert.deepEqual(sidecars(last), sidecars(withToken[0]));
      assert.deepEqual(last.spec.volumes.filter((v: any) => v.name.startsWith("tenet-")), withToken[0].spec.volumes.filter((v: any) => v.name.startsWith("tenet-")));
      for (const c of last.spec.containers) assert.ok(c.volumeMounts.some((m: any) => m.name === tokenOf(last)), "every container mounts its own pod's token volume");
    });

    it("respects the opt-out annotation, and injects by annotation in a namespace that did not opt in", async () => {
      const out = await kube.create(resourcePath(Resources.pods, ns), { ...pod("opted-out", {}), metadata: { name: "opted-out", annotations: { "tenet.dev/inject": "false" } } });
      assert.equal(out.spec.initContainers, undefined);
      const plain = await newNamespace("inj-annot");
      const annotated = await waitFor("annotation opt-in", async () => {
        const p = await kube.create(resourcePath(Resources.pods, plain), { ...pod("a", {}), metadata: { generateName: "a-", annotations: { "tenet.dev/inject": "true" } } });
        return p.spec.initContainers?.[0]?.name === "tenet-enforcer" ? p : undefined;
      });
      assert.ok(annotated);
      const untouched = await kube.create(resourcePath(Resources.pods, plain), pod("b", {}));
      assert.equal(untouched.spec.initContainers, undefined, "no opt-in, no injection");
    });

    it("never injects in kube-system or Tenet's own namespace", async () => {
      // tenet-system enforces the restricted Pod Security Standard: use a pod that meets it.
      const restricted = {
        runAsNonRoot: true,
        seccompProfile: { type: "RuntimeDefault" },
      };
      const container = { name: "app", image: "ghcr.io/acme/x:1", securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } } };
      for (const exempt of ["kube-system", "tenet-system"]) {
        await kube.create(resourcePath(Resources.serviceAccounts, exempt), { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default" } }).catch(() => undefined);
        const p = await kube.create(
          resourcePath(Resources.pods, exempt),
          { apiVersion: "v1", kind: "Pod", metadata: { generateName: "x-", annotations: { "tenet.dev/inject": "true" } }, spec: { securityContext: restricted, containers: [container] } },
          { dryRun: "All" },
        );
        assert.equal(p.spec.initContainers, undefined, exempt);
      }
    });
  });

  describe("validation", () => {
    let ns: string;
    beforeEach(async () => {
      ns = await newNamespace("val");
      await startOperator();
    });

    async function rule(name: string, spec: unknown) {
      await createObject(kube, tenet("RuntimeRule", ns, name, spec));
    }
    /** Retries until the operator's caches reflect what the test just created. */
    const eventually = <T>(what: string, fn: () => Promise<T | undefined>) => waitFor(what, fn, 20_000, 200);

    it("rejects a Deployment whose image exceeds the thresholds, naming image, counts, threshold, rule and the fix", async () => {
      await rule("baseline", { selector: {}, enforcement: "enforce", vulnerabilities: { thresholds: { critical: 0, high: 5 } } });
      await kube.create(resourcePath(VR, ns), vulnerabilityReport("rs-orders-app", "acme/orders", "1.0", [
        { id: "CVE-2025-0001", severity: "CRITICAL" },
        { id: "CVE-2025-0002", severity: "CRITICAL" },
        { id: "CVE-2025-0003", severity: "HIGH" },
      ]));
      const res = await eventually("a denial", async () => {
        const r = await apply(ns, deployment("orders", "ghcr.io/acme/orders:1.0"));
        return r.code !== 0 ? r : undefined;
      });
      assert.match(res.stderr, /admission webhook "validate.tenet.dev" denied the request/);
      assert.match(res.stderr, /ghcr\.io\/acme\/orders:1\.0/);
      assert.match(res.stderr, /2 critical/);
      assert.match(res.stderr, /threshold 0/);
      assert.match(res.stderr, new RegExp(`RuntimeRule ${ns}/baseline`));
      assert.match(res.stderr, /exemption/);
      const events = await eventsFor(kube, ns, "baseline");
      await waitFor("a Warning Event on the RuntimeRule", async () => (await eventsFor(kube, ns, "baseline")).some((e) => e.reason === "AdmissionDenied"));
      void events;
    });

    it("admits the same Deployment in audit mode, with a warning the pipeline sees", async () => {
      await rule("watch", { selector: {}, enforcement: "audit", vulnerabilities: { thresholds: { critical: 0 } } });
      await kube.create(resourcePath(VR, ns), vulnerabilityReport("rs-orders-app", "acme/orders", "1.0", [{ id: "CVE-2025-0001", severity: "CRITICAL" }]));
      const res = await eventually("an admission warning", async () => {
        const r = await apply(ns, deployment(`orders-${Date.now()}`, "ghcr.io/acme/orders:1.0"));
        assert.equal(r.code, 0, r.stderr);
        return /Warning:.*1 critical/.test(r.stderr) ? r : undefined;
      });
      assert.match(res.stderr, new RegExp(`RuntimeRule ${ns}/watch`));
      await waitFor("an Event on the RuntimeRule", async () => (await eventsFor(kube, ns, "watch")).some((e) => e.reason === "AdmittedWithWarnings"));
    });

    it("judges a pod by reports of its own namespace and of trusted scanner namespaces only: one planted elsewhere changes nothing (issue 11 item 8)", async () => {
      const evil = await newNamespace("evil");
      const repo = `acme/planted-${Date.now().toString(36)}`;
      const strict = { selector: {}, enforcement: "enforce", vulnerabilities: { thresholds: { critical: 0 }, unscannedImages: "deny" } };
      await rule("strict", strict);
      await createObject(kube, tenet("RuntimeRule", evil, "strict", strict));
      // A clean report in evil: it speaks for evil's pods (so the operator has seen it) …
      await kube.create(resourcePath(VR, evil), vulnerabilityReport("rs-planted", repo, "1.0", []));
      await eventually("evil's own pod admitted by evil's report", async () => ((await apply(evil, deployment("p1", `ghcr.io/${repo}:1.0`))).code === 0 ? true : undefined));
      // … and not for this namespace's: the image is unscanned here.
      const unscanned = await apply(ns, deployment("p1", `ghcr.io/${repo}:1.0`));
      assert.notEqual(unscanned.code, 0, "a planted clean report does not clear the image elsewhere");
      assert.match(unscanned.stderr, /no scan data|not been scanned|unscanned/i);
      // This namespace's own report decides, even against a newer clean one planted in evil.
      await kube.create(resourcePath(VR, ns), vulnerabilityReport("rs-own", repo, "2.0", [{ id: "CVE-2025-7001", severity: "CRITICAL" }]));
      await eventually("the own report to count", async () => ((await apply(ns, deployment("p2", `ghcr.io/${repo}:2.0`))).code !== 0 ? true : undefined));
      await new Promise((r) => setTimeout(r, 1100)); // a strictly newer updateTimestamp
      await kube.create(resourcePath(VR, evil), vulnerabilityReport("rs-planted-2", repo, "2.0", []));
      await eventually("the planted report to be seen (it clears evil's pods)", async () => ((await apply(evil, deployment("p2", `ghcr.io/${repo}:2.0`))).code === 0 ? true : undefined));
      const own = await apply(ns, deployment("p2", `ghcr.io/${repo}:2.0`));
      assert.notEqual(own.code, 0, own.stderr);
      assert.match(own.stderr, /1 critical/);
      // A report in a trusted scanner namespace (trivy-system by default) speaks for every namespace.
      await kube.create(resourcePath(Resources.namespaces), { apiVersion: "v1", kind: "Namespace", metadata: { name: "trivy-system" } }).catch((e) => (e.code === 409 ? undefined : Promise.reject(e)));
      const name = `rs-scanner-${Date.now().toString(36)}`;
      await kube.create(resourcePath(VR, "trivy-system"), vulnerabilityReport(name, repo, "3.0", [{ id: "CVE-2025-7002", severity: "CRITICAL" }]));
      try {
        const scanner = await eventually("trivy-system's report to decide", async () => {
          const r = await apply(ns, deployment("p3", `ghcr.io/${repo}:3.0`));
          return r.code !== 0 && /1 critical/.test(r.stderr) ? r : undefined;
        });
        assert.match(scanner.stderr, new RegExp(`RuntimeRule ${ns}/strict`));
      } finally {
        await kube.delete(resourcePath(VR, "trivy-system", name)).catch(() => undefined);
      }
    });

    it("applies the unscanned-image policy: deny refuses, warn warns, allow admits", async () => {
      await rule("strict", { selector: { matchLabels: { app: "strict" } }, vulnerabilities: { thresholds: { critical: 0 }, unscannedImages: "deny" } });
      await rule("lenient", { selector: { matchLabels: { app: "lenient" } }, vulnerabilities: { thresholds: { critical: 0 }, unscannedImages: "warn" } });
      await rule("open", { selector: { matchLabels: { app: "open" } }, vulnerabilities: { thresholds: { critical: 0 }, unscannedImages: "allow" } });
      const denied = await eventually("unscanned denial", async () => {
        const r = await apply(ns, deployment("strict", "ghcr.io/acme/never-scanned:1"));
        return r.code !== 0 ? r : undefined;
      });
      assert.match(denied.stderr, /no scan data|not been scanned|unscanned/i);
      const warned = await apply(ns, deployment("lenient", "ghcr.io/acme/never-scanned:1"));
      assert.equal(warned.code, 0, warned.stderr);
      assert.match(warned.stderr, /Warning:/);
      const open = await apply(ns, deployment("open", "ghcr.io/acme/never-scanned:1"));
      assert.equal(open.code, 0, open.stderr);
      assert.doesNotMatch(open.stderr, /Warning:/);
    });

    it("honours an unexpired CVE exemption and ignores an expired one", async () => {
      const future = new Date(Date.now() + 86_400_000).toISOString().replace(/\.\d+Z$/, "Z");
      const past = new Date(Date.now() - 86_400_000).toISOString().replace(/\.\d+Z$/, "Z");
      await rule("exempt", {
        selector: {},
        vulnerabilities: {
          thresholds: { critical: 0 },
          exemptions: [
            { id: "CVE-2025-1111", expires: future, reason: "not reachable in our build" },
            { id: "CVE-2025-2222", expires: past, reason: "was waiting for 1.1" },
          ],
        },
      });
      await kube.create(resourcePath(VR, ns), vulnerabilityReport("rs-a", "acme/a", "1", [{ id: "CVE-2025-1111", severity: "CRITICAL" }]));
      await kube.create(resourcePath(VR, ns), vulnerabilityReport("rs-b", "acme/b", "1", [{ id: "CVE-2025-2222", severity: "CRITICAL" }]));
      const refused = await eventually("the expired exemption to be ignored", async () => {
        const r = await apply(ns, deployment("b", "ghcr.io/acme/b:1"));
        return r.code !== 0 ? r : undefined;
      });
      assert.match(refused.stderr, /CVE-2025-2222|1 critical/);
      const admitted = await apply(ns, deployment("a", "ghcr.io/acme/a:1"));
      assert.equal(admitted.code, 0, admitted.stderr);
    });

    it("reads Trivy JSON reports that an administrator supplies in a ConfigMap", async () => {
      const sample = readFileSync(path.join(repoRoot, "test/fixtures/trivy-cli/billing-high-critical.json"), "utf8");
      const artifact = JSON.parse(sample).Metadata.RepoTags[0] as string; // the image the report is for
      await rule("pipeline", { selector: {}, vulnerabilities: { thresholds: { critical: 0, high: 0 }, unscannedImages: "allow" } });
      await kube.create(resourcePath(Resources.configMaps, "tenet-system"), {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: `trivy-${ns}`, labels: { "tenet.dev/trivy-report": "true" } },
        data: { "alpine.json": sample },
      });
      const res = await eventually("a denial from the ConfigMap report", async () => {
        const r = await apply(ns, deployment("alpine", artifact));
        return r.code !== 0 ? r : undefined;
      });
      assert.match(res.stderr, /ConfigMap tenet-system\/trivy-/);
    });

    it("lists every pod-security violation in one message", async () => {
      await rule("psa", { selector: {}, podSecurity: { allowedRegistries: ["ghcr.io/acme"], requireDigest: true } });
      const bad = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "bad" },
        spec: {
          hostNetwork: true,
          containers: [{ name: "app", image: "docker.io/evil/miner:latest", securityContext: { privileged: true, capabilities: { add: ["SYS_ADMIN"] } } }],
          volumes: [{ name: "root", hostPath: { path: "/" } }],
        },
      };
      const res = await eventually("a pod-security denial", async () => {
        const r = await apply(ns, bad);
        return r.code !== 0 ? r : undefined;
      });
      for (const expected of [/privileged/, /hostNetwork/, /hostPath/, /SYS_ADMIN/, /runAsNonRoot|root/, /registr/, /digest/]) assert.match(res.stderr, expected);
    });

    it("refuses hostile input sent straight to the endpoints, and keeps serving", async () => {
      await rule("psa", { selector: {}, podSecurity: {} });
      const url = (p: string) => `https://127.0.0.1:${operator.securePort}${p}`;
      const send = (p: string, body: string | Buffer, type = "application/json") =>
        httpsRequest(url(p), { method: "POST", ca: trust, headers: { "content-type": type }, body });
      const review = (request: unknown) => JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request });
      const privileged = { uid: "u1", kind: { group: "", version: "v1", kind: "Pod" }, resource: { group: "", version: "v1", resource: "pods" }, operation: "CREATE", namespace: ns, object: { metadata: { name: "p" }, spec: { containers: [{ name: "c", image: "ghcr.io/x/y:1", securityContext: { privileged: true } }] } } };
      let nested = "1";
      for (let i = 0; i < 5000; i++) nested = `{"a":${nested}}`;
      const cases: [string, Promise<any>, number][] = [
        ["malformed JSON", send("/validate", "{"), 400],
        ["the wrong kind", send("/validate", JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "Pod" })), 400],
        ["the wrong version", send("/validate", JSON.stringify({ apiVersion: "admission.k8s.io/v1beta1", kind: "AdmissionReview", request: privileged })), 400],
        ["a review without a uid", send("/mutate", review({ ...privileged, uid: undefined })), 400],
        // The server reads (and drops) the rest of an oversized body before it answers 413, so the
        // caller reads the 413 rather than a connection reset (operator/server/drain.ts).
        ["a huge body", send("/validate", Buffer.alloc(8 * 1024 * 1024, 32)), 413],
        ["deeply nested JSON", send("/validate", nested), 400],
        ["a non-JSON content type", send("/validate", review(privileged), "text/plain"), 415],
      ];
      for (const [what, call, status] of cases) {
        const res = await call;
        assert.equal(res.status, status, `${what}: ${res.body.slice(0, 300)}`);
      }
      // A well-formed review of a forbidden pod is denied, even with odd extra fields.
      const denied = await eventually("the RuntimeRule in the cache", async () => {
        const r = await send("/validate", review({ ...privileged, extra: { weird: [1, 2, 3] }, object: { ...privileged.object, spec: { ...privileged.object.spec, unknownField: true } } }));
        return r.json?.response?.allowed === false ? r : undefined;
      });
      assert.equal(denied.json.response.uid, "u1");
      assert.match(denied.json.response.status.message, /privileged/);
      // A pod without containers is a safe denial, not a crash.
      const empty = await send("/mutate", review({ ...privileged, uid: "u2", object: { metadata: {}, spec: {} } }));
      assert.equal(empty.status, 200);
      assert.equal(empty.json.response.uid, "u2");
      assert.ok(operator.running, "the operator survived");

      // Unauthenticated callers choose request.kind.kind: many distinct (and large) kinds must not
      // grow the label set of tenet_admission_requests_total (each label value is kept forever).
      for (let i = 0; i < 150; i++) {
        const r = await send("/validate", review({ ...privileged, uid: `k${i}`, kind: { group: "", version: "v1", kind: `Hostile${i}${"K".repeat(10_000)}` } }));
        assert.equal(r.status, 200);
      }
      const series = [...(await operator.metrics()).keys()].filter((k) => k.startsWith("tenet_admission_requests_total{"));
      assert.ok(series.length <= 12, `bounded label sets: ${series.length}\n${series.join("\n").slice(0, 2000)}`);
      assert.ok(series.some((k) => k.includes('kind="other"')), series.join("\n"));
      assert.ok(!series.some((k) => k.includes("Hostile")));
    });
  });

  describe("when Tenet is down", () => {
    it("refuses pods as documented (failurePolicy Fail) while exempt namespaces keep working", async () => {
      const ns = await newNamespace("down");
      await kube.patch(resourcePath(Resources.namespaces, undefined, ns), "merge", { metadata: { labels: { "tenet.dev/inject": "enabled" } } });
      await startOperator();
      await waitForInjection(ns);
      await operator.kill("SIGKILL");
      await assert.rejects(kube.create(resourcePath(Resources.pods, ns), pod("blocked", {})), /failed calling webhook "(inject|validate)\.tenet\.dev"/);
      await kube.create(resourcePath(Resources.serviceAccounts, "kube-system"), { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default" } }).catch(() => undefined);
      const repaired = await kube.create(resourcePath(Resources.pods, "kube-system"), { ...pod("repair", {}), metadata: { generateName: "repair-" } });
      assert.ok(repaired.metadata.name, "kube-system is exempt: the cluster can always be repaired");
    });
  });
});
