// Which DNS names a ServiceIdentity may put in its workloads' certificates: only names of
// Services in its own namespace, in the four forms a pod can resolve them by —
//   <svc> · <svc>.<ns> · <svc>.<ns>.svc · <svc>.<ns>.svc.<cluster-domain>
// — never a wildcard, another namespace's name, or (from outside Tenet's namespace) the
// operator's own Service name. The Service need not exist yet: every such name belongs to the
// namespace whether or not it has created the Service (issue 11 item 2). The CRD's CEL rules
// refuse wildcards and other shapes at admission; the namespace can only be checked here.
import { OPERATOR_NAME } from "../../common/names.ts";

/** A Service name: an RFC 1035 label. */
const SERVICE_NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

export interface DNSNameScope {
  /** The ServiceIdentity's namespace. */
  namespace: string;
  /** Tenet's own namespace (the operator's Service lives there). */
  tenetNamespace: string;
  clusterDomain: string;
}

/** Why `name` is not allowed for a ServiceIdentity in scope.namespace, or undefined when it is. */
export function dnsNameProblem(name: string, scope: DNSNameScope): string | undefined {
  const { namespace: ns, clusterDomain } = scope;
  const n = name.toLowerCase().replace(/\.$/, "");
  if (n.includes("*")) return "wildcards are not allowed";
  const labels = n.split(".");
  const svc = labels[0];
  const rest = labels.slice(1).join(".");
  const forms = ["", ns, `${ns}.svc`, `${ns}.svc.${clusterDomain.toLowerCase()}`];
  if (!forms.includes(rest)) {
    if (labels.length >= 2 && labels[1] !== ns && (labels.length === 2 || labels[2] === "svc")) return `it names namespace ${labels[1]}, not this ServiceIdentity's namespace ${ns}`;
    return `it is not a name of a Service in namespace ${ns}`;
  }
  if (!SERVICE_NAME.test(svc)) return `${JSON.stringify(svc)} is not a Service name (a DNS label: lowercase letters, digits and "-", starting with a letter, at most 63 characters)`;
  if (ns !== scope.tenetNamespace && svc === OPERATOR_NAME) return `${OPERATOR_NAME} is the name of Tenet's own Service; only ServiceIdentities in ${scope.tenetNamespace} may use it`;
  return undefined;
}

/** The allowed forms, for messages. */
export function dnsNameForms(scope: DNSNameScope): string {
  const ns = scope.namespace;
  return `<service>, <service>.${ns}, <service>.${ns}.svc or <service>.${ns}.svc.${scope.clusterDomain}`;
}

/** Every listed name that is not allowed, as "dnsNames[i] "name": why". */
export function dnsNamesProblems(names: readonly string[], scope: DNSNameScope): string[] {
  return names.flatMap((d, i) => {
    const why = dnsNameProblem(d, scope);
    return why ? [`spec.certificate.dnsNames[${i}] ${JSON.stringify(d)}: ${why}`] : [];
  });
}
