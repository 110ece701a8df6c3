// The CSR flow: who is asking (TokenReview of a pod-bound projected token), which pod and
// ServiceIdentity that is, whether it may have the names it asks for, then one signature.
// Every refusal is a SignRejection with an HTTP status, a reason code and a message that says
// what to fix; nothing here throws anything else for bad input.
import type { Kube } from "../../common/kube.ts";
import { isNotFound, resourcePath, Resources } from "../../common/kube.ts";
import type { ServiceIdentity } from "../../crds/types.gen.ts";
import type { CachedPod } from "../cache/pods.ts";
import { toCachedPod } from "../cache/pods.ts";
import { spiffeID as spiffeIDFor } from "../../pki/spiffe-id.ts";
import { selectsPod } from "../controllers/serviceidentity.ts";
import type { Informer } from "../runtime/informer.ts";
import type { TenetObject } from "../../common/objects.ts";
import { durationSeconds, identityAttributes } from "./attributes.ts";
import type { InjectionConfig } from "../../admission/inject.ts";
import type { LoadedAuthorities } from "./authorities.ts";
import { issueLeaf, LeafRequestError } from "./leaf.ts";
import { CSRError, parseCSR } from "../../pki/csr.ts";
import { QUARANTINE_LABEL, TOKEN_AUDIENCE } from "../../common/names.ts";
import { TokenReviewCache } from "./token-reviews.ts";
import { dnsNameForms, dnsNamesProblems } from "./dns-names.ts";


export class SignRejection extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly pod?: CachedPod,
  ) {
    super(message);
  }
}

export interface IssuerDeps {
  kube: Kube;
  pods: Informer<CachedPod>;
  identities: Informer<ServiceIdentity & TenetObject>;
  authorities: () => LoadedAuthorities | undefined;
  caError: () => string | undefined;
  trustDomain: string;
  maxTTLSeconds: number;
  /** Tenet's injection settings: the exact injected enforcer is left out of the image attribute. */
  injection?: InjectionConfig;
  /** Tenet's own namespace and the cluster's DNS domain: which DNS names a ServiceIdentity may list (dns-names.ts). */
  tenetNamespace?: string;
  clusterDomain?: string;
  now?: () => Date;
  /** Records the serial on the pod before the certificate is handed out (quarantine revokes it); returns the pod's labels as written. */
  record?: (pod: CachedPod, serial: string, notAfter: string) => Promise<Record<string, string>>;
}

export interface Issued {
  certificate: string;
  bundle: string;
  spiffeID: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  renewAfter: string;
  pod: CachedPod;
  identity: ServiceIdentity;
}

interface Caller {
  namespace: string;
  serviceAccount: string;
  podName: string;
  podUID: string;
}

export async function issueForWorkload(token: string | undefined, csrPEM: unknown, deps: IssuerDeps): Promise<Issued> {
  if (!token) throw new SignRejection(401, "MissingToken", "no bearer token: send the pod's projected service-account token (audience \"tenet\") in the Authorization header");
  if (typeof csrPEM !== "string" || csrPEM.length === 0) throw new SignRejection(400, "MalformedCSR", 'the body must be JSON {"csr": "<PEM certificate request>"}');

  const caller = await reviewToken(token, deps.kube);
  const pod = await findPod(caller, deps);
  if (pod.metadata.labels?.[QUARANTINE_LABEL] === "true") throw quarantined(pod);
  const identity = findIdentity(pod, deps);
  const authorities = deps.authorities();
  if (!authorities) throw new SignRejection(503, "CAUnavailable", deps.caError() ?? "the CA is not loaded yet; retry shortly", pod);

  let csr;
  try {
    csr = parseCSR(csrPEM);
  } catch (err) {
    if (err instanceof CSRError) throw new SignRejection(400, err.reason, err.message, pod);
    throw new SignRejection(400, "MalformedCSR", `the CSR could not be read: ${(err as Error).message}`, pod);
  }

  const spiffeID = spiffeIDFor(deps.trustDomain, caller.namespace, caller.serviceAccount);
  const listedDNS = identity.spec.certificate?.dnsNames ?? [];
  const scope = { namespace: caller.namespace, tenetNamespace: deps.tenetNamespace ?? "tenet-system", clusterDomain: deps.clusterDomain ?? "cluster.local" };
  const badDNS = dnsNamesProblems(listedDNS, scope);
  if (badDNS.length) {
    throw new SignRejection(422, "DNSNameNotAllowed", `ServiceIdentity ${caller.namespace}/${identity.metadata.name} lists DNS names its namespace does not own: ${badDNS.join("; ")}. Fix spec.certificate.dnsNames: only names of Services in namespace ${caller.namespace} (${dnsNameForms(scope)}), no wildcards`, pod);
  }
  const allowedDNS = new Set(listedDNS);
  const refused = [
    ...csr.uris.filter((u) => u !== spiffeID).map((u) => `URI ${u} (this pod's identity is ${spiffeID})`),
    ...csr.dnsNames.filter((d) => !allowedDNS.has(d)).map((d) => `DNS ${d} (not in ServiceIdentity ${identity.metadata.name} spec.certificate.dnsNames)`),
    ...csr.ipAddresses.map((ip) => `IP ${ip} (workload certificates carry no IP addresses)`),
    ...csr.emails.map((e) => `email ${e}`),
  ];
  if (refused.length) throw new SignRejection(403, "NameNotAllowed", `the CSR asks for names this workload may not have: ${refused.join("; ")}`, pod);

  const ttl = Math.min(deps.maxTTLSeconds, durationSeconds(identity.spec.certificate?.ttl, 86_400));
  const renewBefore = Math.min(ttl / 2, durationSeconds(identity.spec.certificate?.renewBefore, 8 * 3600));
  const now = deps.now?.() ?? new Date();
  let leaf: ReturnType<typeof issueLeaf>;
  try {
    leaf = issueLeaf(authorities.active, {
      publicKeyDer: csr.publicKeyDer,
      spiffeID,
      dnsNames: csr.dnsNames.length ? csr.dnsNames : [...allowedDNS],
      attributes: identityAttributes(pod, identity, deps.injection),
      ttlSeconds: ttl,
      now,
    });
  } catch (err) {
    if (!(err instanceof LeafRequestError)) throw err;
    // Attributes come from the pod and its ServiceIdentity, so the fix is there, not in the CSR.
    if (/CA expired/.test(err.message)) throw new SignRejection(503, "CAUnavailable", err.message, pod);
    throw new SignRejection(422, "InvalidAttributes", `cannot issue for pod ${pod.metadata.namespace}/${pod.metadata.name}: ${err.message} (fix the pod's labels or ServiceIdentity ${identity.metadata.name} spec.attributes)`, pod);
  }
  if (deps.record) {
    let labels: Record<string, string>;
    try {
      labels = await deps.record(pod, leaf.serial, leaf.notAfter.toISOString());
    } catch (err) {
      throw new SignRejection(503, "CertificateNotRecorded", `the certificate for pod ${pod.metadata.namespace}/${pod.metadata.name} could not be recorded on the pod (${(err as Error).message}); retry shortly`, pod);
    }
    // Quarantined while we were signing: the serial is recorded (and will be revoked), the certificate is not handed out.
    if (labels[QUARANTINE_LABEL] === "true") throw quarantined(pod);
  }
  return {
    certificate: leaf.pem,
    bundle: authorities.bundlePem,
    spiffeID,
    serial: leaf.serial,
    notBefore: leaf.notBefore.toISOString(),
    notAfter: leaf.notAfter.toISOString(),
    renewAfter: new Date(leaf.notAfter.getTime() - renewBefore * 1000).toISOString(),
    pod,
    identity,
  };
}

function quarantined(pod: CachedPod): SignRejection {
  const ref = `${pod.metadata.namespace}/${pod.metadata.name}`;
  return new SignRejection(
    403,
    "Quarantined",
    `pod ${ref} is quarantined (label ${QUARANTINE_LABEL}=true) and gets no new certificate until it is released: fix what its annotation tenet.dev/posture-detail names (it is released automatically once clean, unless its RuntimeRule sets spec.quarantine.autoRelease: false), or release it explicitly with kubectl annotate pod -n ${pod.metadata.namespace} ${pod.metadata.name} tenet.dev/release="<reason>"`,
    pod,
  );
}

/** Accepted reviews per API client (operator/ca/token-reviews.ts): one TokenReview per token lifetime. */
const reviewCaches = new WeakMap<Kube, TokenReviewCache<Caller>>();

async function reviewToken(token: string, kube: Kube): Promise<Caller> {
  let cache = reviewCaches.get(kube);
  if (!cache) reviewCaches.set(kube, (cache = new TokenReviewCache<Caller>()));
  const cached = cache.get(token);
  if (cached) return cached;
  const caller = await reviewTokenOnce(token, kube);
  cache.set(token, caller);
  return caller;
}

async function reviewTokenOnce(token: string, kube: Kube): Promise<Caller> {
  const review = await kube.create("/apis/authentication.k8s.io/v1/tokenreviews", {
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenReview",
    spec: { token, audiences: [TOKEN_AUDIENCE] },
  });
  const status = review.status ?? {};
  if (!status.authenticated) {
    const why = String(status.error ?? "");
    if (/audience/i.test(why)) throw new SignRejection(401, "TokenAudienceMismatch", `the token is not for audience "${TOKEN_AUDIENCE}": project the service-account token with audience: tenet`);
    if (/expired/i.test(why)) throw new SignRejection(401, "TokenExpired", "the token has expired: re-read the projected token file (the kubelet refreshes it)");
    throw new SignRejection(401, "InvalidToken", "the token was not accepted by the API server (forged, revoked, or for a deleted object)");
  }
  if (!(status.audiences ?? []).includes(TOKEN_AUDIENCE)) {
    throw new SignRejection(401, "TokenAudienceMismatch", `the token is not for audience "${TOKEN_AUDIENCE}"`);
  }
  const m = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(status.user?.username ?? "");
  if (!m) throw new SignRejection(403, "NotAServiceAccount", `only workload service accounts get certificates, not ${status.user?.username ?? "an unknown user"}`);
  const extra = status.user?.extra ?? {};
  const podName = extra["authentication.kubernetes.io/pod-name"]?.[0];
  const podUID = extra["authentication.kubernetes.io/pod-uid"]?.[0];
  if (!podName || !podUID) {
    throw new SignRejection(401, "TokenNotBoundToPod", "the token is not bound to a pod: use the pod's projected service-account token, not a long-lived or TokenRequest-without-pod token");
  }
  return { namespace: m[1], serviceAccount: m[2], podName, podUID };
}

/**
 * Who is calling: the pod a projected service-account token (audience "tenet") is bound to,
 * verified by TokenReview and found in the cache. Shared by every endpoint enforcers call
 * (certificates, policy); refusals are SignRejections (401 token, 403 pod).
 */
export async function authenticatePod(token: string | undefined, deps: Pick<IssuerDeps, "kube" | "pods">): Promise<CachedPod> {
  if (!token) throw new SignRejection(401, "MissingToken", "no bearer token: send the pod's projected service-account token (audience \"tenet\") in the Authorization header");
  return findPod(await reviewToken(token, deps.kube), deps);
}

async function findPod(caller: Caller, deps: Pick<IssuerDeps, "kube" | "pods">): Promise<CachedPod> {
  const key = `${caller.namespace}/${caller.podName}`;
  let pod = deps.pods.get(key);
  if (!pod || pod.metadata.uid !== caller.podUID) {
    // A pod created a moment ago may not be in the cache yet: ask the API server once.
    try {
      pod = toCachedPod(await deps.kube.get(resourcePath(Resources.pods, caller.namespace, caller.podName)));
    } catch (err) {
      if (!isNotFound(err)) throw err;
      pod = undefined;
    }
  }
  if (!pod || pod.metadata.uid !== caller.podUID || pod.metadata.deletionTimestamp) {
    throw new SignRejection(403, "PodNotFound", `the token is bound to pod ${key} (uid ${caller.podUID}), which no longer exists`);
  }
  if (pod.spec.serviceAccountName !== caller.serviceAccount) {
    throw new SignRejection(403, "ServiceAccountMismatch", `pod ${key} runs as ${pod.spec.serviceAccountName}, not ${caller.serviceAccount}`, pod);
  }
  return pod;
}

function findIdentity(pod: CachedPod, deps: IssuerDeps): ServiceIdentity {
  const matches = deps.identities.listNamespace(pod.metadata.namespace).filter((si) => selectsPod(si, pod));
  const ref = `pod ${pod.metadata.namespace}/${pod.metadata.name}`;
  if (matches.length === 0) {
    throw new SignRejection(403, "NoServiceIdentity", `${ref} is not selected by any ServiceIdentity in its namespace; create one whose spec.selector matches the pod's labels`, pod);
  }
  if (matches.length > 1) {
    const names = matches.map((m) => m.metadata.name).sort().join(", ");
    throw new SignRejection(409, "AmbiguousServiceIdentity", `${ref} is selected by several ServiceIdentities (${names}); narrow their selectors so exactly one matches`, pod);
  }
  return matches[0];
}
