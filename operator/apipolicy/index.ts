// APIPolicy distribution: every replica serves GET /v1/policy on the secure server. An enforcer
// authenticates with its pod's projected token (exactly like the CSR endpoint) and gets the
// PolicyDocument for its pod, with an ETag; the version it received is recorded on the pod
// (annotation tenet.dev/policy-version) off the request path, so APIPolicy status can count the
// enforcers running each policy's current version.
import type { FastifyInstance } from "fastify";
import { resourcePath, Resources, type Kube } from "../../common/kube.ts";
import { clip } from "../../common/bounded.ts";
import type { Logger } from "../../common/logger.ts";
import type { APIPolicy } from "../../crds/types.gen.ts";
import { jwksURIs, policyDocument, type PolicyDocument } from "../../policy/authz.ts";
import type { CachedPod } from "../cache/pods.ts";
import { authenticatePod, SignRejection } from "../ca/issuer.ts";
import type { TenetObject } from "../../common/objects.ts";
import type { Informer } from "../runtime/informer.ts";
import { JWKSFetcher, type JWKSFetcherOptions } from "./jwks.ts";
import type { MeshDirectory } from "./mesh.ts";
import { FieldManagers, POLICY_VERSION_ANNOTATION } from "../../common/names.ts";
import { bearerToken, etagMatches } from "../../common/http.ts";


export interface PolicyDistribution {
  routes(app: FastifyInstance): void;
  /** The document the operator serves to this pod now. */
  documentFor(pod: CachedPod): PolicyDocument;
  /** Cached key sets for the rules' jwksURI (fetched by the operator). */
  jwks: (uri: string) => string | undefined;
  /** Why a jwksURI's key set is not fetched (host not allowed, fetch failed), for APIPolicy status. */
  jwksProblem: (uri: string) => { reason: string; message: string } | undefined;
  onKeysChanged(cb: () => void): void;
  stop(): Promise<void>;
}

export function createPolicyDistribution(ctx: {
  kube: Kube;
  log: Logger;
  pods: Informer<CachedPod>;
  policies: Informer<APIPolicy & TenetObject>;
  jwks?: JWKSFetcherOptions;
  /** Meshed destinations and the workload's inbound/egress settings, served with the policy. */
  mesh?: MeshDirectory;
}): PolicyDistribution {
  const log = ctx.log.child({ component: "policy" });
  const listeners: (() => void)[] = [];
  const fetcher = new JWKSFetcher(
    log,
    () => {
      documents.clear();
      listeners.forEach((l) => l());
    },
    ctx.jwks,
  );
  const documents = new PolicyDocuments(ctx.policies, fetcher.get);
  const recorder = new VersionRecorder(ctx.kube, log, ctx.pods);
  // Start fetching keys as soon as a policy names them, not on the first enforcer's request.
  ctx.policies.onChange(() => {
    const uris = jwksURIs(ctx.policies.list().map((p) => p.spec));
    fetcher.retain(uris);
    uris.forEach((u) => fetcher.get(u));
  });

  return {
    documentFor: (pod) => documents.forPod(pod),
    jwks: fetcher.get,
    jwksProblem: (uri) => fetcher.problem(uri),
    onKeysChanged: (cb) => listeners.push(cb),
    routes(app) {
      app.get("/v1/policy", async (req, reply) => {
        const token = bearerToken(req.headers.authorization);
        let pod: CachedPod;
        try {
          pod = await authenticatePod(token, { kube: ctx.kube, pods: ctx.pods });
        } catch (err) {
          if (!(err instanceof SignRejection)) throw err;
          log.warn({ reason: err.reason, remote: req.ip }, clip(err.message, 1024)!);
          return reply.code(err.status).send({ error: { reason: err.reason, message: err.message } });
        }
        const doc = documents.forPod(pod);
        const mesh = ctx.mesh?.forPod(pod);
        // One ETag for both parts: a new pod behind a Service changes it as a new policy does.
        const etag = mesh ? `"${doc.version}.${mesh.version}"` : `"${doc.version}"`;
        recorder.record(pod, doc.version);
        reply.header("etag", etag).header("cache-control", "no-cache");
        if (etagMatches(req.headers["if-none-match"], etag)) return reply.code(304).send();
        log.debug({ pod: `${pod.metadata.namespace}/${pod.metadata.name}`, version: doc.version, policies: doc.policies.length }, "policy document served");
        return reply.type("application/json").send(mesh ? { ...doc, mesh } : doc);
      });
    },
    stop: async () => {
      fetcher.stop();
      await recorder.stop();
    },
  };
}

/** Documents memoized per (namespace, labels) until any APIPolicy changes. */
export class PolicyDocuments {
  private memo = new Map<string, PolicyDocument>();
  constructor(
    private readonly policies: Informer<APIPolicy & TenetObject>,
    private readonly jwks?: (uri: string) => string | undefined,
  ) {
    // Any change (spec or status) clears the memo: cheap, and status writes are rare.
    policies.onChange(() => this.memo.clear());
  }

  clear() {
    this.memo.clear();
  }

  forPod(pod: CachedPod): PolicyDocument {
    const ns = pod.metadata.namespace;
    const labels = pod.metadata.labels ?? {};
    const key = `${ns}\0${JSON.stringify(Object.entries(labels).sort())}`;
    let doc = this.memo.get(key);
    if (!doc) {
      doc = policyDocument(ns, labels, this.policies.listNamespace(ns), this.jwks);
      if (this.memo.size > 10_000) this.memo.clear();
      this.memo.set(key, doc);
    }
    return doc;
  }
}

/**
 * Writes tenet.dev/policy-version on a pod (server-side apply, field manager tenet-policy) when the
 * version served differs from the one recorded. One write in flight at a time, latest version per
 * pod wins, failures are logged and retried on the enforcer's next fetch.
 */
class VersionRecorder {
  private pending = new Map<string, { pod: CachedPod; version: string }>();
  /** Written but not yet seen in the pod cache: no second write for the same version. */
  private written = new Map<string, string>();
  private running?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly kube: Kube,
    private readonly log: Logger,
    pods: Informer<CachedPod>,
  ) {
    pods.onChange((type, pod) => {
      const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
      if (type === "delete" || pod.metadata.annotations?.[POLICY_VERSION_ANNOTATION] === this.written.get(key)) this.written.delete(key);
    });
  }

  record(pod: CachedPod, version: string) {
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    if (this.stopped || pod.metadata.annotations?.[POLICY_VERSION_ANNOTATION] === version || this.written.get(key) === version) return;
    this.pending.set(key, { pod, version });
    this.running ??= new Promise<void>((r) => setImmediate(r)).then(() => this.flush()).finally(() => (this.running = undefined));
  }

  private async flush() {
    while (this.pending.size && !this.stopped) {
      const [key, { pod, version }] = this.pending.entries().next().value!;
      this.pending.delete(key);
      try {
        await this.kube.apply(
          resourcePath(Resources.pods, pod.metadata.namespace, pod.metadata.name),
          { apiVersion: "v1", kind: "Pod", metadata: { name: pod.metadata.name, namespace: pod.metadata.namespace, annotations: { [POLICY_VERSION_ANNOTATION]: version } } },
          FieldManagers.policy,
        );
        this.written.set(key, version);
        this.log.debug({ pod: key, version }, "policy version recorded on the pod");
      } catch (err) {
        this.log.warn({ pod: key, version, err: String(err) }, "could not record the policy version on the pod; retried on the enforcer's next fetch");
      }
    }
  }

  async stop() {
    this.stopped = true;
    await this.running;
  }
}
