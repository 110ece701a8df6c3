// Wires the operator together: the shared caches (informers), the features (identity,
// admission, APIPolicy distribution, posture) and the secure server they serve on, the status
// controllers, leader election and the health server. Every replica keeps warm caches and
// serves HTTPS; only the leader runs the controllers. Features are constructed first (no I/O),
// then the caches sync, the CA loads and the server listens: nothing is bound late.
import type { Logger } from "../common/logger.ts";
import { Resources, type Kube } from "../common/kube.ts";
import type { TenetObject } from "../common/objects.ts";
import type { APIPolicy, RuntimeRule, ServiceIdentity } from "../crds/types.gen.ts";
import { createScanFeed } from "../scans/informers.ts";
import { createAdmission } from "./admission/index.ts";
import { createPolicyDistribution } from "./apipolicy/index.ts";
import { MeshDirectory, toCachedEndpointSlice, toCachedService, type CachedEndpointSlice, type CachedService } from "./apipolicy/mesh.ts";
import { createIdentity } from "./ca/index.ts";
import { toCachedNamespace, type CachedNamespace } from "./cache/namespaces.ts";
import { toCachedPod, type CachedPod } from "./cache/pods.ts";
import type { OperatorConfig } from "./config.ts";
import { planAPIPolicy } from "./controllers/apipolicy.ts";
import { planRuntimeRule } from "./controllers/runtimerule.ts";
import { planServiceIdentity } from "./controllers/serviceidentity.ts";
import { statusReconciler, type StatusPlan } from "./controllers/status-reconciler.ts";
import { PostureController } from "./posture/controller.ts";
import { PolicyReports } from "./reports/controller.ts";
import { Controller } from "./runtime/controller.ts";
import { EventRecorder } from "./runtime/events.ts";
import { buildHealthServer } from "./runtime/health.ts";
import { Informer, objectKey } from "./runtime/informer.ts";
import { markSignalsLeader, ownPod } from "./signals/leader-label.ts";
import { LeaderElector } from "./runtime/leader.ts";
import { RuntimeMetrics } from "./runtime/metrics.ts";
import { SecureServer, servingIdentity } from "./server/index.ts";
import { createSignals } from "./signals/index.ts";

/** How long pod changes wait before the status controllers recount (they coalesce meanwhile). */
const POD_TRIGGER_DELAY_MS = 500;

export interface RunningOperator {
  /** Graceful: in-flight reconciles finish, the Lease is released, servers close. */
  stop(): Promise<void>;
  readonly metrics: RuntimeMetrics;
  readonly healthPort: number;
  readonly securePort: () => number;
}

export async function startOperator(kube: Kube, cfg: OperatorConfig, log: Logger, onLostLeadership: () => void): Promise<RunningOperator> {
  const metrics = new RuntimeMetrics();
  const events = new EventRecorder(kube, log, cfg.identity, metrics);
  const informer = <T extends TenetObject>(name: string, resource: (typeof Resources)[keyof typeof Resources], transform?: (raw: any) => T) =>
    new Informer<T>(kube, log, { name, resource, transform, resyncMs: cfg.resyncMs, onRestart: () => metrics.informerRestarts.inc({ informer: name }) });

  const pods = informer<CachedPod>("pods", Resources.pods, toCachedPod);
  const namespaces = new Informer<CachedNamespace>(kube, log.child({ component: "admission" }), { name: "namespaces", resource: Resources.namespaces, transform: toCachedNamespace });
  const identities = informer<ServiceIdentity & TenetObject>("serviceidentities", Resources.serviceIdentities);
  const policies = informer<APIPolicy & TenetObject>("apipolicies", Resources.apiPolicies);
  const rules = informer<RuntimeRule & TenetObject>("runtimerules", Resources.runtimeRules);
  const scans = createScanFeed({ kube, log, namespace: cfg.namespace, trustedNamespaces: cfg.scanNamespaces });

  const controllerFor = <T extends TenetObject>(name: string, kind: string, inf: Informer<T>, resource: { group: string; version: string; plural: string }, plan: (o: T, now: Date) => StatusPlan) => {
    const c = new Controller({
      name,
      log,
      metrics,
      workers: cfg.workers,
      reconcile: statusReconciler({ kube, events, informer: inf, resource, kind, plan }),
    });
    inf.onChange((_type, obj) => c.enqueue(objectKey(obj)));
    // Pods change what these objects select: re-evaluate every object in the pod's namespace,
    // after a short delay that folds a burst (a rescan writing 500 pods) into one reconcile each:
    // every reconcile counts all pods of the namespace.
    pods.onChange((_type, pod) => {
      for (const o of inf.listNamespace(pod.metadata.namespace)) c.queue.addAfter(objectKey(o), POD_TRIGGER_DELAY_MS);
    });
    return c;
  };

  // The features. Constructed without I/O, so each gets the others' objects, not late-bound closures.
  const identity = createIdentity({ kube, cfg, log, metrics, events, pods, identities });
  const server = new SecureServer(log, { host: cfg.secureHost, port: cfg.securePort, identity: servingIdentity(cfg) }, identity.servingCertificates);
  const signals = createSignals({ kube, cfg, log, metrics, events, pods, identities, rules });
  const admission = createAdmission({ kube, cfg, log, metrics, events, namespaces, rules, scans: scans.index, trust: identity.servingStore, server, signals: signals.sink });
  // What capture needs to route the app's outbound calls (operator/apipolicy/mesh.ts).
  const services = informer<CachedService>("services", Resources.services, toCachedService);
  const slices = informer<CachedEndpointSlice>("endpointslices", Resources.endpointSlices, toCachedEndpointSlice);
  const mesh = new MeshDirectory(cfg.trustDomain, pods, services, slices, identities);
  const policyDistribution = createPolicyDistribution({ kube, log, pods, policies, jwks: { allowedHosts: cfg.jwksAllowedHosts }, mesh });
  // Rescans: registered before the informers start, so every pod and report reaches its index.
  const posture = new PostureController({ kube, cfg, log, metrics, events, pods, rules, namespaces, scans, revocations: identity.revocations, signals: signals.sink });
  server.routes(identity.routes).routes(admission.routes).routes(policyDistribution.routes).routes(signals.routes);

  const serviceIdentityStatus = controllerFor("serviceidentity", "ServiceIdentity", identities, Resources.serviceIdentities, (si) =>
    planServiceIdentity(si, pods.listNamespace(si.metadata.namespace!), identities.listNamespace(si.metadata.namespace!), cfg.trustDomain),
  );
  const apiPolicyStatus = controllerFor("apipolicy", "APIPolicy", policies, Resources.apiPolicies, (p) =>
    planAPIPolicy(p, pods.listNamespace(p.metadata.namespace!), policies.listNamespace(p.metadata.namespace!), policyDistribution.jwks, policyDistribution.jwksProblem),
  );
  const runtimeRuleStatus = controllerFor("runtimerule", "RuntimeRule", rules, Resources.runtimeRules, (r, now) => planRuntimeRule(r, pods.listNamespace(r.metadata.namespace!), now));
  // New issuer keys change the documents, so which enforcers run the current one.
  policyDistribution.onKeysChanged(() => policies.list().forEach((p) => apiPolicyStatus.enqueue(objectKey(p))));
  // PolicyReports (leader only; nothing happens while the CRD is not installed).
  const reports = cfg.policyReports.enabled ? new PolicyReports({ kube, cfg, log, metrics, pods, rules, namespaces, incidents: signals.incidents }) : undefined;
  const controllers: Controller[] = [serviceIdentityStatus, apiPolicyStatus, runtimeRuleStatus, identity.controller, admission.controller, posture, ...(reports ? [reports] : [])];

  const informers = [pods, identities, policies, rules, namespaces, services, slices, ...scans.informers, posture.policies.informer, ...signals.informers];
  const health = buildHealthServer(metrics, () => {
    const pending = informers.filter((i) => !i.hasSynced).map((i) => i.name);
    if (pending.length) return { ready: false, detail: `waiting for caches: ${pending.join(", ")}` };
    if (!server.serving()) return { ready: false, detail: `HTTPS endpoint not serving: ${server.problem()}` };
    return { ready: true, detail: "ok" };
  });
  await health.listen({ host: cfg.healthHost, port: cfg.healthPort });
  const healthPort = (health.server.address() as { port: number }).port;
  log.info({ port: healthPort }, "serving /healthz, /readyz and /metrics");

  const started = Date.now();
  await Promise.all(informers.map((i) => i.start()));
  log.info({ ms: Date.now() - started, pods: pods.size, serviceIdentities: identities.size, apiPolicies: policies.size, runtimeRules: rules.size }, "caches synced");

  await identity.start();
  await server.start();

  // Signals reach the leader only (operator/signals/leader-label.ts): clear a label left from an earlier run first.
  const self = ownPod();
  await markSignalsLeader(kube, log, self, false);
  const startControllers = () => {
    controllers.forEach((c) => c.start());
    void markSignalsLeader(kube, log, self, true);
  };
  let elector: LeaderElector | undefined;
  if (cfg.leaderElection) {
    elector = new LeaderElector(
      kube,
      log,
      {
        namespace: cfg.namespace,
        name: cfg.leaseName,
        identity: cfg.identity,
        leaseDurationMs: cfg.leaseDurationMs,
        renewDeadlineMs: cfg.renewDeadlineMs,
        retryPeriodMs: cfg.retryPeriodMs,
      },
      metrics,
    );
    void elector.run(startControllers, onLostLeadership);
  } else {
    metrics.leader.set(1);
    startControllers();
  }

  return {
    metrics,
    healthPort,
    securePort: () => server.port(),
    async stop() {
      await Promise.all(controllers.map((c) => c.stop()));
      await markSignalsLeader(kube, log, self, false);
      await elector?.release();
      await server.stop();
      await signals.stop();
      await identity.stop();
      await policyDistribution.stop();
      informers.forEach((i) => i.stop());
      await health.close();
    },
  };
}
