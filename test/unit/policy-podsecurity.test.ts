import { strict as assert } from "node:assert";
import type { RuntimeRulePodSecurity } from "../../crds/types.gen.ts";
import { podSpecOf } from "../../policy/admission.ts";
import { parseImage } from "../../common/images.ts";
import { podSecurityViolations, summarizeViolations } from "../../policy/podsecurity.ts";
import { jsonFixture, yamlFixture } from "../harness/fixtures.ts";

const admissionSample = (name: string): any => jsonFixture(`admission/${name}`);
const daemonSet = (): any => yamlFixture("pod-specs/node-sentinel-daemonset.yaml");

// A rule that checks only what a case is about: everything else allowed.
const permissive: RuntimeRulePodSecurity = { allowPrivileged: true, allowHostNamespaces: true, allowedHostPaths: ["/"], requireRunAsNonRoot: false, allowPrivilegeEscalation: true };
const only = (ps: RuntimeRulePodSecurity): RuntimeRulePodSecurity => ({ ...permissive, ...ps });
const fields = (podSpec: any, ps: RuntimeRulePodSecurity | undefined) => podSecurityViolations(podSpec, ps).map((v) => v.field);

const SHA = "sha256:" + "ab".repeat(32);
const pod = (container: any, extra: any = {}) => ({ containers: [{ name: "app", image: "ghcr.io/acme/app:1", ...container }], ...extra });

describe("pod security: admission requests for pods", () => {
  it("catches a privileged init container with its field path", () => {
    const spec = podSpecOf("Pod", admissionSample("request-pod-privileged-init-container.json").object)!.podSpec;
    const vs = podSecurityViolations(spec, only({ allowPrivileged: false }));
    assert.deepEqual(vs.map((v) => v.field), ["spec.initContainers[0].securityContext.privileged"]);
    assert.match(vs[0].message, /^spec\.initContainers\[0\]\.securityContext\.privileged is true \(init container "sysctl-tuner"\) but the rule forbids privileged containers \(set spec\.podSecurity\.allowPrivileged: true to allow\)$/);
  });

  it("catches a privileged ephemeral container with its field path", () => {
    const spec = podSpecOf("Pod", admissionSample("request-pod-privileged-ephemeral-container.json").object)!.podSpec;
    assert.deepEqual(fields(spec, only({ allowPrivileged: false })), ["spec.ephemeralContainers[0].securityContext.privileged"]);
  });

  it("finds nothing privileged in the pod without privileged containers", () => {
    const spec = podSpecOf("Pod", admissionSample("request-pod-no-privileged-containers.json").object)!.podSpec;
    assert.deepEqual(fields(spec, only({ allowPrivileged: false })), []);
  });

  it("applies the CRD defaults to an empty podSecurity: no privileged, no escalation, non-root", () => {
    const spec = podSpecOf("Pod", admissionSample("request-pod-privileged-init-container.json").object)!.podSpec;
    assert.deepEqual(fields(spec, {}), [
      "spec.containers[0].securityContext.allowPrivilegeEscalation",
      "spec.containers[1].securityContext.allowPrivilegeEscalation",
      "spec.initContainers[0].securityContext.privileged",
      "spec.initContainers[0].securityContext.allowPrivilegeEscalation",
      "spec.securityContext.runAsNonRoot",
    ]);
  });

  it("a rule without podSecurity checks nothing", () => {
    const spec = podSpecOf("Pod", admissionSample("request-pod-privileged-init-container.json").object)!.podSpec;
    assert.deepEqual(podSecurityViolations(spec, undefined), []);
  });
});

describe("pod security: a node agent DaemonSet", () => {
  it("finds both privileged containers, every hostPath and the escalations across containers and init containers", () => {
    const { podSpec } = podSpecOf("DaemonSet", daemonSet())!;
    const got = fields(podSpec, { allowedHostPaths: ["/proc", "/sys", "/etc"], allowedRegistries: ["quay.io/node-sentinel"] });
    assert.ok(got.includes("spec.containers[0].securityContext.privileged"));
    assert.ok(got.includes("spec.initContainers[0].securityContext.privileged"));
    assert.ok(!got.includes("spec.containers[1].securityContext.privileged"), "rules-sync has a null securityContext");
    for (const i of [0, 1, 2, 3, 4, 5, 6, 13, 14, 15]) assert.ok(got.includes(`spec.volumes[${i}].hostPath.path`), `volume ${i}`);
    assert.equal(got.filter((f) => f.startsWith("spec.volumes")).length, 10, "the three sockets, /boot, /lib/modules, /usr/src, /dev, /var/log, kubelet's pods and the agent's state");
    for (const i of [10, 11, 12, 16]) assert.ok(!got.includes(`spec.volumes[${i}].hostPath.path`), `volume ${i} is allowed (${podSpec.volumes[i].hostPath?.path})`);
    for (const c of ["containers[0]", "containers[1]", "initContainers[0]", "initContainers[1]"]) assert.ok(got.includes(`spec.${c}.securityContext.allowPrivilegeEscalation`), c);
    assert.ok(!got.some((f) => f.endsWith(".image")), "all images come from quay.io/node-sentinel");
  });

  it("summarizes alike violations into one sentence each, most dangerous first", () => {
    const { podSpec } = podSpecOf("DaemonSet", daemonSet())!;
    const lines = summarizeViolations(podSecurityViolations(podSpec, {}));
    assert.equal(lines.length, 4);
    assert.match(lines[0], /^securityContext\.privileged is true in spec\.containers\[0\] \("sentinel"\) and spec\.initContainers\[0\] \("probe-loader"\) but the rule forbids privileged containers/);
    assert.match(lines[1], /^14 hostPath volumes mount paths the rule does not allow: "\/run\/containerd\/containerd\.sock", /);
    assert.match(lines[2], /^securityContext\.allowPrivilegeEscalation is not false/);
    assert.match(lines[3], /^spec\.securityContext\.runAsNonRoot is not true/);
  });
});

describe("pod security checks", () => {
  const cases: [string, any, RuntimeRulePodSecurity, string[]][] = [
    ["privileged is forbidden by default", pod({ securityContext: { privileged: true } }), only({ allowPrivileged: undefined }), ["spec.containers[0].securityContext.privileged"]],
    ["privileged is accepted when the rule allows it", pod({ securityContext: { privileged: true } }), only({ allowPrivileged: true }), []],
    ["host namespaces are each reported", pod({}, { hostNetwork: true, hostPID: true, hostIPC: false }), only({ allowHostNamespaces: false }), ["spec.hostNetwork", "spec.hostPID"]],
    ["a hostPath under an allowed prefix passes", pod({}, { volumes: [{ name: "logs", hostPath: { path: "/var/log/pods" } }] }), only({ allowedHostPaths: ["/var/log"] }), []],
    ["a hostPath prefix matches whole segments only", pod({}, { volumes: [{ name: "l", hostPath: { path: "/var/logs" } }] }), only({ allowedHostPaths: ["/var/log"] }), ["spec.volumes[0].hostPath.path"]],
    ["a hostPath escaping its prefix with .. is caught", pod({}, { volumes: [{ name: "l", hostPath: { path: "/var/log/../../etc" } }] }), only({ allowedHostPaths: ["/var/log"] }), ["spec.volumes[0].hostPath.path"]],
    ["no allowedHostPaths means no hostPath volumes", pod({}, { volumes: [{ name: "e", emptyDir: {} }, { name: "h", hostPath: { path: "/tmp" } }] }), only({ allowedHostPaths: [] }), ["spec.volumes[1].hostPath.path"]],
    ["added capabilities are compared without CAP_ and uppercased", pod({ securityContext: { capabilities: { add: ["CAP_NET_BIND_SERVICE", "net_admin"] } } }), only({ allowedCapabilities: ["NET_BIND_SERVICE"] }), ["spec.containers[0].securityContext.capabilities.add[1]"]],
    ["dropped capabilities are not checked", pod({ securityContext: { capabilities: { drop: ["ALL"] } } }), only({}), []],
    ["allowPrivilegeEscalation absent counts as allowed, so it is a violation", pod({}), only({ allowPrivilegeEscalation: false }), ["spec.containers[0].securityContext.allowPrivilegeEscalation"]],
    ["allowPrivilegeEscalation: false passes", pod({ securityContext: { allowPrivilegeEscalation: false } }), only({ allowPrivilegeEscalation: false }), []],
    ["runAsNonRoot at pod level passes", pod({}, { securityContext: { runAsNonRoot: true } }), only({ requireRunAsNonRoot: true }), []],
    ["runAsNonRoot at container level passes", pod({ securityContext: { runAsNonRoot: true } }), only({ requireRunAsNonRoot: true }), []],
    ["a non-zero runAsUser passes", pod({ securityContext: { runAsUser: 1000 } }), only({ requireRunAsNonRoot: true }), []],
    ["runAsUser 0 in the container is a violation even with runAsNonRoot", pod({ securityContext: { runAsUser: 0, runAsNonRoot: true } }), only({ requireRunAsNonRoot: true }), ["spec.containers[0].securityContext.runAsUser"]],
    ["runAsUser 0 at pod level is reported once, on the pod", { containers: [{ name: "a", image: "x" }, { name: "b", image: "y" }], securityContext: { runAsUser: 0 } }, only({ requireRunAsNonRoot: true }), ["spec.securityContext.runAsUser"]],
    ["a container's runAsNonRoot: false overrides the pod's true", pod({ securityContext: { runAsNonRoot: false } }, { securityContext: { runAsNonRoot: true } }), only({ requireRunAsNonRoot: true }), ["spec.containers[0].securityContext.runAsNonRoot"]],
    ["nothing set is reported on the pod's runAsNonRoot", pod({}), only({ requireRunAsNonRoot: true }), ["spec.securityContext.runAsNonRoot"]],
    ["an image from another registry is reported", pod({ image: "quay.io/acme/app:1" }), only({ allowedRegistries: ["ghcr.io/acme"] }), ["spec.containers[0].image"]],
    ["a bare image name is docker.io/library for allowedRegistries", pod({ image: "nginx" }), only({ allowedRegistries: ["docker.io/library"] }), []],
    ["an image without a digest is reported when digests are required", pod({ image: "ghcr.io/acme/app:1" }), only({ requireDigest: true }), ["spec.containers[0].image"]],
    ["an image pinned by digest passes", pod({ image: `ghcr.io/acme/app@${SHA}` }), only({ requireDigest: true }), []],
    ["an invalid image reference cannot pass a registry check", pod({ image: "Not An Image" }), only({ allowedRegistries: ["ghcr.io"] }), ["spec.containers[0].image"]],
    ["native sidecars (init containers with restartPolicy Always) are checked", { containers: [], initContainers: [{ name: "proxy", image: "x", restartPolicy: "Always", securityContext: { privileged: true } }] }, only({ allowPrivileged: false }), ["spec.initContainers[0].securityContext.privileged"]],
  ];
  for (const [name, spec, ps, want] of cases) {
    it(name, () => assert.deepEqual(fields(spec, ps), want));
  }

  it("uses images parsed by the caller, matched by reference", () => {
    const spec = { containers: [{ name: "a", image: "ghcr.io/acme/a:1" }], initContainers: [{ name: "b", image: "quay.io/x/b:1" }] };
    const vs = podSecurityViolations(spec, only({ allowedRegistries: ["ghcr.io"] }), [parseImage("quay.io/x/b:1"), parseImage("ghcr.io/acme/a:1")]);
    assert.deepEqual(vs.map((v) => v.field), ["spec.initContainers[0].image"]);
    assert.match(vs[0].message, /^spec\.initContainers\[0\]\.image quay\.io\/x\/b:1 \(init container "b"\) is not from an allowed registry \(ghcr\.io\)/);
  });

  it("tolerates null and missing fields anywhere in the spec", () => {
    assert.deepEqual(fields({ containers: [null, { name: "a", securityContext: null }], volumes: null, securityContext: null }, only({})), []);
    assert.deepEqual(fields(undefined, only({})), []);
  });
});
