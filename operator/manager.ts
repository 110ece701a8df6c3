// Wires informers, controllers, leader election and the health server into one operator.
// Every replica keeps warm caches (later: serves webhooks and the CA); only the leader
// runs the controllers.
import type { Logger } from "../common/logger.ts";
import { Resources, type Kube } from "../common/kube.ts";
import type { APIPolicy, RuntimeRule, ServiceIdentity } from "../crds/types.gen.ts";
import { toCachedPod, type CachedPod } from "./cache/pods.ts";
import type { OperatorConfig } from "./config.ts";
import { createAdmission } from "./admission/index.ts";
import { startIdentity } from "./ca/index.ts";
import { planAPIPolicy } from "./controllers/apipolicy.ts";
import { createPolicyDistribution } from "./policy/index.ts";
import { planRuntimeRule } from "./controllers/runtimerule.ts";
import { planServiceIdentity } from "./controllers/serviceidentity.ts";
import { statusReconciler, type StatusPlan, type TenetObject } from "./controllers/status-reconciler.ts";
import { Controller } from "./runtime/controller.ts";
import { EventRecorder } from "./runtime/events.ts";
import { buildHealthServer } from "./runtime/health.ts";
import { Informer, objectKey } from "./runtime/informer.ts";
import { LeaderElector } from "./runtime/leader.ts";
import { PostureController } from "./posture/controller.ts";
import { RuntimeMetrics } from "./runtime/metrics.ts";

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
  const identities = informer<ServiceIdentity & TenetObject>("serviceidentities", Resources.serviceIdentities);
  const policies = informer<APIPolicy & TenetObject>("apipolicies", Resources.apiPolicies);
  const rules = informer<RuntimeRule & TenetObject>("runtimerules", Resources.runtimeRules);
  const policyDistribution = createPolicyDistribution({ kube, log, pods, policies, jwks: { allowedHosts: cfg.jwksAllowedHosts } });

  const controllerFor = <T extends TenetObject>(name: string, kind: string, inf: Informer<T>, resource: { group: string; version: string; plural: string }, plan: (o: T, now: Date) => StatusPlan) => {
    const c = new Controller({
      name,
      log,
      metrics,
      workers: cfg.workers,
      reconcile: statusReconciler({ kube, events, informer: inf, resource, kind, plan }),
    });
    inf.onChange((_type, obj) => c.enqueue(objectKey(obj)));
    // Pods change what these objects select: re-evaluate every object in the pod's namespace.
    pods.onChange((_type, pod) => {
      for (const o of inf.listNamespace(pod.metadata.namespace)) c.enqueue(objectKey(o));
    });
    return c;
  };

  const controllers = [
    controllerFor("serviceidentity", "ServiceIdentity", identities, Resources.serviceIdentities, (si) =>
      planServiceIdentity(si, pods.listNamespace(si.metadata.namespace!), identities.listNamespace(si.metadata.namespace!), cfg.trustDomain),
    ),
    controllerFor("apipolicy", "APIPolicy", policies, Resources.apiPolicies, (p) =>
      planAPIPolicy(p, pods.listNamespace(p.metadata.namespace!), policies.listNamespace(p.metadata.namespace!), policyDistribution.jwks, policyDistribution.jwksProblem),
    ),
    controllerFor("runtimerule", "RuntimeRule", rules, Resources.runtimeRules, (r, now) => planRuntimeRule(r, pods.listNamespace(r.metadata.namespace!), now)),
  ];

  // New issuer keys change the documents, so which enforcers run the current one.
  policyDistribution.onKeysChanged(() => policies.list().forEach((p) => controllers[1].enqueue(objectKey(p))));

  let identity: Awaited<ReturnType<typeof startIdentity>> | undefined;
  const admission = createAdmission({
    kube,
    cfg,
    log,
    metrics,
    events,
    rules,
    injection: cfg.injection,
    bundle: () => identity?.store.authorities?.bundlePem,
    securePort: () => identity?.securePort() ?? 0,
  });
  // Rescans: registered before the informers start, so every pod and report reaches its index.
  const posture = new PostureController({
    kube,
    cfg,
    log,
    metrics,
    events,
    pods,
    rules,
    scans: admission.scans,
    sources: admission.sources,
    revocations: () => identity?.revocations,
  });
  const informers = [pods, identities, policies, rules, ...admission.informers, posture.policies.informer];
  const health = buildHealthServer(metrics, () => {
    const pending = informers.filter((i) => !i.hasSynced).map((i) => i.name);
    if (pending.length) return { ready: false, detail: `waiting for caches: ${pending.join(", ")}` };
    if (!identity?.serving()) return { ready: false, detail: `HTTPS endpoint not serving: ${identity?.store.error ?? "starting"}` };
    return { ready: true, detail: "ok" };
  });
  await health.listen({ host: cfg.healthHost, port: cfg.healthPort });
  const healthPort = (health.server.address() as { port: number }).port;
  log.info({ port: healthPort }, "serving /healthz, /readyz and /metrics");

  const started = Date.now();
  await Promise.all(informers.map((i) => i.start()));
  log.info({ ms: Date.now() - started, pods: pods.size, serviceIdentities: identities.size, apiPolicies: policies.size, runtimeRules: rules.size }, "caches synced");

  identity = await startIdentity({ kube, cfg, log, metrics, events, pods, identities, routes: (app) => {
    admission.routes(app);
    policyDistribution.routes(app);
  } });
  identity.store.onChange(() => admission.refreshConfigurations());
  admission.refreshConfigurations();
  controllers.push(identity.controller, admission.controller, posture);

  const startControllers = () => controllers.forEach((c) => c.start());
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
    securePort: () => identity!.securePort(),
    async stop() {
      await Promise.all(controllers.map((c) => c.stop()));
      await elector?.release();
      await identity!.stop();
      await policyDistribution.stop();
      informers.forEach((i) => i.stop());
      await health.close();
    },
  };
}
