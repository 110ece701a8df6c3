// Every name Tenet writes on or reads from Kubernetes objects that is not its own CRDs' schema:
// labels, annotations, the token audience, the names of the objects it creates, its field
// managers. One module, so two concerns can never disagree on a name and a new one can be
// checked against all the others. Grouped by the concern that writes the name; the readers are
// listed where they are not obvious. Constants only: shipped with the operator and the enforcer.

// ---------------------------------------------------------------------------------------------
// Kubernetes' own names Tenet relies on

/** Set by the API server on every namespace and immutable, unlike any label we could invent. */
export const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";
export const PART_OF_LABEL = "app.kubernetes.io/part-of";
export const COMPONENT_LABEL = "app.kubernetes.io/component";
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
/** Labels on everything Tenet creates. */
export const PART_OF_TENET = { [PART_OF_LABEL]: "tenet" } as const;
export const MANAGED_BY_TENET = { [MANAGED_BY_LABEL]: "tenet" } as const;

// ---------------------------------------------------------------------------------------------
// The operator itself

/** The operator's Service and ServiceAccount name (its serving certificate's SPIFFE ID uses it). */
export const OPERATOR_NAME = "tenet-operator";
/** The Service senders of signals use: it selects only the leader's pod (SIGNALS_LEADER_LABEL), because correlation state lives in one replica. */
export const SIGNALS_SERVICE = "tenet-signals";
/** Set by the leader on its own pod in Tenet's namespace, removed when it stops leading (operator/signals/leader-label.ts). */
export const SIGNALS_LEADER_LABEL = "tenet.dev/signals-leader";
/** Field managers of Tenet's server-side applies and patches, one per writer. */
export const FieldManagers = {
  operator: "tenet-operator",
  ca: "tenet-ca",
  posture: "tenet-posture",
  policy: "tenet-policy",
  signals: "tenet-signals",
  reports: "tenet-reports",
} as const;

// ---------------------------------------------------------------------------------------------
// Identity (operator/ca/): tokens, the trust bundle, certificates

/** Audience of the projected service-account token an enforcer presents to the operator. */
export const TOKEN_AUDIENCE = "tenet";
/** The operator publishes the trust bundle in this ConfigMap, key BUNDLE_KEY, in every namespace. */
export const BUNDLE_CONFIGMAP = "tenet-trust-bundle";
export const BUNDLE_KEY = "ca.crt";
/**
 * The serving CA bundle, next to BUNDLE_KEY in the same ConfigMap: what enforcers trust for the
 * operator's HTTPS (and nothing else). Peers are trusted by BUNDLE_KEY only (issue 11 item 2).
 */
export const OPERATOR_BUNDLE_KEY = "operator-ca.crt";
/** The revocation list ConfigMap in Tenet's namespace. */
export const REVOCATIONS_CONFIGMAP = "tenet-revocations";
/** CA Secret annotation: set it to rotate the CA now. */
export const ROTATE_ANNOTATION = "tenet.dev/rotate";
/** Pod annotation: serial → notAfter of every certificate issued to the pod (read by quarantine). */
export const CERTIFICATES_ANNOTATION = "tenet.dev/certificates";
/** Pod label or annotation the commit attribute of a certificate comes from. */
export const COMMIT_LABEL = "tenet.dev/commit";
/** Pod label the tier attribute of a certificate comes from. */
export const TIER_LABEL = "tenet.dev/tier";

// ---------------------------------------------------------------------------------------------
// Admission (operator/admission/): injection and the webhook configurations

/** The injected sidecar's container name. */
export const ENFORCER_CONTAINER = "tenet-enforcer";
/** Containers Tenet injects start with this; they are not part of the workload's identity. */
export const TENET_CONTAINER_PREFIX = "tenet-";
/** Pod annotation, "true" opts in and "false" opts out. */
export const INJECT_ANNOTATION = "tenet.dev/inject";
/** Namespace label, "enabled" opts in. */
export const INJECT_NAMESPACE_LABEL = "tenet.dev/inject";
/** Set on injected pods: the annotation records the injector version. */
export const INJECTED_ANNOTATION = "tenet.dev/injected";
/** Set on injected pods, so NetworkPolicies and the operator can select pods that have an enforcer. */
export const ENFORCER_LABEL = "tenet.dev/enforcer";
export const ENFORCER_LABEL_VALUE = "injected";
/** Optional pod annotation: the port the app listens on (the enforcer forwards to it). */
export const APP_PORT_ANNOTATION = "tenet.dev/app-port";
/** Name of the Mutating- and ValidatingWebhookConfiguration. */
export const WEBHOOK_CONFIG_NAME = "tenet";

// ---------------------------------------------------------------------------------------------
// Scan data (scans/)

/** ConfigMaps in Tenet's namespace with this label set to "true" hold Trivy JSON reports. */
export const TRIVY_REPORT_LABEL = "tenet.dev/trivy-report";

// ---------------------------------------------------------------------------------------------
// Posture (operator/posture/); the CA reads POSTURE_LABEL into the certificate's attributes and
// refuses certificates to pods with QUARANTINE_LABEL

/** Pod label: clean, warn, unscanned or violating. */
export const POSTURE_LABEL = "tenet.dev/posture";
/** Pod label "true" on quarantined pods; the quarantine NetworkPolicy selects it. */
export const QUARANTINE_LABEL = "tenet.dev/quarantined";
/** Pod annotation: JSON detail of the posture (rule, reason, counts, message). */
export const DETAIL_ANNOTATION = "tenet.dev/posture-detail";
/** Set by a person on a pod: release it from quarantine now. */
export const RELEASE_ANNOTATION = "tenet.dev/release";
/** Set by Tenet: the fingerprint of the violation a person accepted by releasing the pod. */
export const RELEASED_ANNOTATION = "tenet.dev/released";
/** Set by Tenet on a quarantined pod: JSON array of the RuntimeRules ("ns/name") that quarantined
 * it. An automatic release needs every one of them to still select the pod and allow it, so
 * relabelling the pod away from its rules releases nothing. */
export const QUARANTINED_BY_ANNOTATION = "tenet.dev/quarantined-by";
/** Set by Tenet's signal responses (operator/signals/) on a pod: JSON {action: label|quarantine,
 * rule, incident}. Posture reads it: the pod is violating (reason RuntimeSignal) and, for
 * quarantine, quarantined like any other, never released automatically; an explicit release
 * removes it. */
export const SIGNAL_ANNOTATION = "tenet.dev/signal-response";
/** The deny-all NetworkPolicy in each namespace with a quarantined pod. */
export const NETWORK_POLICY_NAME = "tenet-quarantine";
/** Annotation explaining what an object Tenet created is for. */
export const PURPOSE_ANNOTATION = "tenet.dev/purpose";

// ---------------------------------------------------------------------------------------------
// APIPolicy distribution (operator/apipolicy/)

/** Pod annotation: the PolicyDocument version its enforcer last fetched. */
export const POLICY_VERSION_ANNOTATION = "tenet.dev/policy-version";

// ---------------------------------------------------------------------------------------------
// PolicyReports (operator/reports/): Tenet's results for Policy Reporter and kubectl

/** The wgpolicyk8s.io PolicyReport Tenet writes in each namespace with results. */
export const POLICY_REPORT_NAME = "tenet";
/** `source` of every result Tenet writes. */
export const POLICY_REPORT_SOURCE = "tenet";
/** Report annotation: JSON counts of the results left out to keep the report bounded. */
export const OMITTED_RESULTS_ANNOTATION = "tenet.dev/omitted-results";
