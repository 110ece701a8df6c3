// Injected workloads as real pods: the enforcer starts first, gets its certificate through the
// CSR flow with the pod's projected token, then the app starts and its probes pass; a Job with
// the sidecar completes. Both with transparent capture (on by default): the probes pass through
// the enforcer's health port, the Job's pod had its traffic redirected too.
import assert from "node:assert/strict";
import { waitFor } from "../harness/exec.ts";
import { apply, kube, kubectl, namespace, readyPod } from "../harness/node.ts";

const app = (ns: string) => `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ${ns}}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: web
          image: ghcr.io/acme/e2e-app:1.0
          imagePullPolicy: Never
          command: [node, /app/server.js]
          ports: [{name: http, containerPort: 8080}]
          readinessProbe: {httpGet: {path: /ready, port: http}, periodSeconds: 1}
          livenessProbe: {httpGet: {path: /live, port: http}, periodSeconds: 5}
`;

// Who the workloads are: without a ServiceIdentity the CA issues no certificate (and the
// enforcer, hence the app, never starts).
const identity = (ns: string) => `
apiVersion: tenet.dev/v1alpha1
kind: ServiceIdentity
metadata: {name: default, namespace: ${ns}}
spec:
  selector: {}
  serviceAccountName: default
`;

const job = (ns: string) => `
apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: ${ns}}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: task
          image: ghcr.io/acme/e2e-app:1.0
          imagePullPolicy: Never
          command: [node, -e, "console.log('job done')"]
`;

/** The exit code of the pod's tenet-capture init container (undefined: none, or not finished). */
const captured = (pod: any): number | undefined =>
  pod.status.initContainerStatuses?.find((c: any) => c.name === "tenet-capture")?.state?.terminated?.exitCode;

describe("e2e: injected workloads", function () {
  this.timeout(180_000);
  let ns: Awaited<ReturnType<typeof namespace>>;
  before(async () => {
    ns = await namespace("e2e-wl");
    await apply(identity(ns.name));
  });
  after(async () => ns?.remove());

  it("starts the enforcer before the app, with a certificate from Tenet's CA; the app becomes Ready", async () => {
    await apply(app(ns.name));
    const pod = await readyPod(ns.name, "app=web");
    const sidecar = pod.status.initContainerStatuses.find((c: any) => c.name === "tenet-enforcer");
    const web = pod.status.containerStatuses.find((c: any) => c.name === "web");
    assert.ok(sidecar?.started && sidecar.ready, "the enforcer is started and ready");
    assert.ok(Date.parse(sidecar.state.running.startedAt) <= Date.parse(web.state.running.startedAt), "the enforcer started no later than the app");
    // The CA recorded the serial of the certificate it issued to this pod's token.
    const certs = JSON.parse(pod.metadata.annotations["tenet.dev/certificates"] ?? "{}");
    assert.ok(Object.keys(certs).length >= 1, `no certificate serial recorded on ${pod.metadata.name}`);
    const { stdout } = await kubectl(["logs", "-n", ns.name, pod.metadata.name, "-c", "tenet-enforcer"]);
    assert.match(stdout, /spiffe:\/\/cluster\.local\/ns\/e2e-wl-[0-9a-f]+\/sa\/default/);
    assert.equal(web.ready, true, "the app's readiness probe passes");
    assert.equal(web.restartCount, 0, "the app's liveness probe passes");
    // Under capture: the rules were installed, and the probes go to the enforcer's health port,
    // which runs the app's own probes (docs/capture.md, "Kubelet probes").
    assert.equal(captured(pod), 0, "tenet-capture installed the rules and exited 0");
    const probes = pod.spec.containers.find((c: any) => c.name === "web");
    assert.deepEqual([probes.readinessProbe.httpGet.port, probes.readinessProbe.httpGet.path], [15021, "/app-health/web/readiness"]);
    assert.deepEqual([probes.livenessProbe.httpGet.port, probes.livenessProbe.httpGet.path], [15021, "/app-health/web/liveness"]);
  });

  it("completes a Job whose pod has the enforcer sidecar", async () => {
    await apply(job(ns.name));
    const done = await waitFor("the Job to finish", async () => {
      const j = await kube().get(`/apis/batch/v1/namespaces/${ns.name}/jobs/once`);
      return j.status?.succeeded || j.status?.failed ? j.status : undefined;
    }, 120_000, 1000);
    assert.equal(done.succeeded, 1, `Job status: ${JSON.stringify(done)}`);
    const [jobPod] = (await kube().get(`/api/v1/namespaces/${ns.name}/pods?labelSelector=job-name%3Donce`)).items;
    assert.equal(captured(jobPod), 0, "the Job's pod ran under capture");
    const { stdout } = await kubectl(["logs", "-n", ns.name, "job/once", "-c", "task"]);
    assert.match(stdout, /job done/);
  });
});
