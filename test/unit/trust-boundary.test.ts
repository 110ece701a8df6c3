// Issue 11, items 1 and 3: only the exact enforcer Tenet injects is left out of judgement and of
// the identity's image attribute; the posture attribute comes only from what Tenet established.
import { strict as assert } from "node:assert";
import { injectPod, withoutEnforcer, type InjectionConfig } from "../../admission/inject.ts";
import { mutate } from "../../admission/mutate.ts";
import { validate } from "../../admission/validate.ts";
import type { AdmissionRequest } from "../../admission/review.ts";
import { identityAttributes } from "../../operator/ca/attributes.ts";
import { toCachedPod } from "../../operator/cache/pods.ts";
import { planPosture } from "../../operator/posture/evaluate.ts";
import { ScanIndex } from "../../scans/scan-index.ts";
import type { RuleRef } from "../../policy/vulnerabilities.ts";
import { applyPatch } from "../../admission/patch.ts";
import { testInjectionConfig } from "../harness/injection.ts";

const cfg: InjectionConfig = testInjectionConfig;
const restricted: RuleRef = { namespace: "shop", name: "restricted", spec: { selector: {}, podSecurity: { level: "restricted" } } as any };

function appPod(): any {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web", namespace: "shop", uid: "u1", resourceVersion: "1", labels: { app: "web" } },
    spec: {
      serviceAccountName: "web",
      securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
      containers: [{ name: "app", image: "ghcr.io/acme/web:1.0", ports: [{ containerPort: 8080 }], securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } } }],
    },
  };
}
/** The real enforcer, as Tenet injects it. */
const injected = () => injectPod(appPod(), cfg);
/** Tenet's name and image, but privileged, root, SYS_ADMIN and its own command. */
function lookAlike(): any {
  const p = injected();
  const c = p.spec.initContainers[0];
  p.spec.initContainers = [{ ...c, command: ["/bin/sh", "-c", "nsenter -t 1 -m -u -i -n sh"], securityContext: { privileged: true, runAsUser: 0, capabilities: { add: ["SYS_ADMIN"] } } }];
  return p;
}
const review = (obj: any, operation: AdmissionRequest["operation"] = "CREATE"): AdmissionRequest => ({
  uid: "1",
  kind: { group: "", version: "v1", kind: "Pod" },
  resource: { group: "", version: "v1", resource: "pods" },
  namespace: "shop",
  operation,
  object: obj,
});
const validateDeps = { rules: () => [restricted], scans: new ScanIndex(), now: () => new Date("2026-06-01T00:00:00Z"), injection: cfg, enforcerImage: cfg.image };

describe("trust boundary: look-alike sidecars (issue 11 item 1)", () => {
  it("admits the exact enforcer Tenet injects under a restricted pod-security rule", () => {
    const r = validate(review(injected()), validateDeps);
    assert.equal(r.allowed, true, r.message);
  });

  it("admits the injected enforcer once the API server added its defaults", () => {
    const p = injected();
    const c = p.spec.initContainers[0];
    c.imagePullPolicy = "IfNotPresent";
    c.terminationMessagePath = "/dev/termination-log";
    for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) Object.assign(probe, { timeoutSeconds: 1, successThreshold: 1 }, probe.httpGet && { httpGet: { ...probe.httpGet, scheme: "HTTP" } });
    for (const e of c.env) if (e.valueFrom?.fieldRef) e.valueFrom.fieldRef.apiVersion = "v1";
    // The ServiceAccount admission plugin mounts the API token into every container.
    c.volumeMounts.push({ name: "kube-api-access-6xw8s", readOnly: true, mountPath: "/var/run/secrets/kubernetes.io/serviceaccount" });
    p.spec.volumes.push({ name: "kube-api-access-6xw8s", projected: { sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: "token" } }, { configMap: { name: "kube-root-ca.crt", items: [{ key: "ca.crt", path: "ca.crt" }] } }] } });
    assert.equal(validate(review(p), validateDeps).allowed, true);
    // … but a volume of that name that is not the API token is a difference.
    p.spec.volumes[p.spec.volumes.length - 1] = { name: "kube-api-access-6xw8s", hostPath: { path: "/" } };
    assert.equal(withoutEnforcer(p.spec, cfg).initContainers.length, 1, "the enforcer with a foreign kube-api-access mount is judged");
  });

  it("denies a privileged look-alike with Tenet's name and image", () => {
    const r = validate(review(lookAlike()), validateDeps);
    assert.equal(r.allowed, false);
    assert.match(r.message ?? "", /tenet-enforcer/);
    assert.match(r.message ?? "", /privileged/);
  });

  it("denies a look-alike that only changes its command or mounts", () => {
    const cmd = injected();
    cmd.spec.initContainers[0].command = ["/bin/sh"];
    cmd.spec.initContainers[0].securityContext = { ...cmd.spec.initContainers[0].securityContext, runAsUser: 0, runAsNonRoot: false };
    assert.equal(validate(review(cmd), validateDeps).allowed, false);
  });

  it("judges a look-alike in a Deployment's template too", () => {
    const dep = { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: "shop" }, spec: { template: { metadata: { labels: { app: "web" } }, spec: lookAlike().spec } } };
    const r = validate({ ...review(dep), kind: { group: "apps", version: "v1", kind: "Deployment" }, resource: { group: "apps", version: "v1", resource: "deployments" } }, validateDeps);
    assert.equal(r.allowed, false);
  });

  it("rescans judge a look-alike, not the exact enforcer", () => {
    const plan = (raw: any) => planPosture({ pod: toCachedPod(raw), rules: [restricted], scans: new ScanIndex(), namespaceLabels: { "tenet.dev/inject": "enabled" }, now: new Date(), injection: cfg, enforcerImage: cfg.image } as any);
    assert.notEqual(plan(injected()).posture, "violating");
    const bad = plan(lookAlike());
    assert.equal(bad.posture, "violating");
    assert.equal(bad.quarantine, true);
  });

  it("/mutate replaces a look-alike with the real enforcer instead of answering AlreadyInjected", () => {
    const r = mutate(review(lookAlike()), { namespaceLabels: () => ({ "tenet.dev/inject": "enabled" }), config: cfg });
    assert.equal(r.allowed, true);
    assert.notEqual(r.reason, "AlreadyInjected");
    const out: any = applyPatch(lookAlike(), r.patch as any);
    assert.deepEqual(out.spec.initContainers, injected().spec.initContainers);
  });
});

describe("trust boundary: identity attributes (issue 11 item 3)", () => {
  const si = { apiVersion: "tenet.dev/v1alpha1", kind: "ServiceIdentity", metadata: { name: "web", namespace: "shop" }, spec: { selector: {} } } as any;
  const withPosture = (managedFields?: any[]) => {
    const p = injected();
    p.metadata.labels["tenet.dev/posture"] = "clean";
    if (managedFields) p.metadata.managedFields = managedFields;
    return toCachedPod(p);
  };
  const owns = (manager: string, operation = "Apply") => ({ manager, operation, fieldsType: "FieldsV1", fieldsV1: { "f:metadata": { "f:labels": { "f:tenet.dev/posture": {} } } } });

  it("ignores a posture label the pod's creator set", () => {
    assert.equal(identityAttributes(withPosture(), si, cfg).posture, "unscanned");
    assert.equal(identityAttributes(withPosture([owns("kubectl-create", "Update")]), si, cfg).posture, "unscanned");
    assert.equal(identityAttributes(withPosture([owns("tenet-posture"), owns("kubectl-label", "Update")]), si, cfg).posture, "unscanned");
  });

  it("uses the posture label Tenet's posture controller wrote", () => {
    assert.equal(identityAttributes(withPosture([owns("tenet-posture")]), si, cfg).posture, "clean");
  });

  it("lists a container named tenet-* in the image attribute, and leaves out only the exact enforcer", () => {
    const p = injected();
    p.spec.containers.push({ name: "tenet-helper", image: "evil.example/miner:1" });
    assert.equal(identityAttributes(toCachedPod(p), si, cfg).image, "ghcr.io/acme/web:1.0,evil.example/miner:1");
    assert.equal(identityAttributes(toCachedPod(lookAlike()), si, cfg).image, `${cfg.image},ghcr.io/acme/web:1.0`);
  });
});
