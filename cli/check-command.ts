// `tenet check [FILE | DIR | -]... [flags]` and `tenet check api …`: the flags, the inputs, the
// output format and the exit code (docs/cli.md).
import { injectionConfigFromEnv } from "../admission/injection-config.ts";
import { check, type CheckReport } from "./check.ts";
import { readInputs, type ReadDeps } from "./input.ts";
import { formatJUnit } from "./junit.ts";
import { EXIT, formatJSON, formatText, verdictOf, type Verdict } from "./report.ts";
import { formatSARIF } from "./sarif.ts";
import { runAPICheck, API_USAGE } from "./api-check.ts";
import { parseFlags, UsageError } from "./flags.ts";

export const CHECK_USAGE = `usage: tenet check [FILE | DIR | -]... [-f FILE]... [flags]

Judges workloads (Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob) as Tenet's
admission webhooks would: enforcer injection first, then RuntimeRules (vulnerabilities, pod
security). Reads YAML or JSON manifests, multi-document streams and List kinds; RuntimeRules,
APIPolicies, Namespaces (their labels opt into injection), Trivy JSON reports, VulnerabilityReports
and Tenet's Trivy ConfigMaps may be in the same stream. "-" reads stdin:
  kustomize build overlays/prod | tenet check - -f policies/ -f reports/

  -f, --filename PATH     an input (file, directory, or -); repeatable, like the positional ones
  -R, --recursive         read directories' subdirectories too
  -n, --namespace NS      namespace of objects that name none (default: default)
  -o, --output FORMAT     text (default), json, junit, sarif
      --at TIME           judge at this RFC 3339 time instead of now (exemption expiry)
      --fail-on-warn      exit 3 when a workload is admitted with warnings
      --strict            exit 4 when a workload no RuntimeRule selects, or a RuntimeRule or
                          APIPolicy that selects no workload, is in the inputs
      --tenet-namespace NS  Tenet's namespace (default: TENET_NAMESPACE or tenet-system)
      --scan-namespaces LIST  scanner namespaces trusted for every namespace (default:
                          TENET_SCAN_NAMESPACES or trivy-system,<tenet namespace>)
      --user NAME         who applies the manifests (default: tenet-check)
  -v, --verbose           also list admitted rules, injection, and objects not judged

Exit codes: 0 admitted; 1 denied; 2 bad input or usage; 3 warnings (with --fail-on-warn);
4 nothing matched (no workload, or no RuntimeRule selects any; with --strict, anything unmatched).
`;

export interface CheckDeps extends ReadDeps {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  now: () => Date;
  env: NodeJS.ProcessEnv;
}

const VALUE_FLAGS: Record<string, string> = {
  "-f": "filename", "--filename": "filename", "-n": "namespace", "--namespace": "namespace", "-o": "output", "--output": "output",
  "--at": "at", "--tenet-namespace": "tenetNamespace", "--scan-namespaces": "scanNamespaces", "--user": "user",
};
const BOOL_FLAGS: Record<string, string> = { "-R": "recursive", "--recursive": "recursive", "--fail-on-warn": "failOnWarn", "--strict": "strict", "-v": "verbose", "--verbose": "verbose", "-h": "help", "--help": "help" };

const one = (flags: Record<string, string[]>, key: string, name: string): string | undefined => {
  const v = flags[key];
  if (v && v.length > 1) throw new UsageError(`${name} is given ${v.length} times; give it once`);
  return v?.[0];
};

export async function runCheck(argv: string[], deps: CheckDeps, version: string): Promise<number> {
  if (argv[0] === "api") return runAPICheck(argv.slice(1), deps);
  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags(argv, VALUE_FLAGS, BOOL_FLAGS);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    deps.stderr(`tenet check: ${err.message}\n\n${CHECK_USAGE}`);
    return EXIT.error;
  }
  const { flags, bools, args } = parsed;
  if (bools.has("help")) {
    deps.stdout(CHECK_USAGE + "\n" + API_USAGE);
    return EXIT.ok;
  }
  const usage = (why: string) => {
    deps.stderr(`tenet check: ${why}\n\n${CHECK_USAGE}`);
    return EXIT.error;
  };
  let output: string, namespace: string, tenetNamespace: string, now: Date, scanNamespaces: string[], user: string;
  try {
    output = one(flags, "output", "--output") ?? "text";
    if (!["text", "json", "junit", "sarif"].includes(output)) return usage(`--output ${JSON.stringify(output)} is not one of text, json, junit, sarif`);
    namespace = one(flags, "namespace", "--namespace") ?? "default";
    tenetNamespace = one(flags, "tenetNamespace", "--tenet-namespace") ?? deps.env.TENET_NAMESPACE ?? "tenet-system";
    for (const [flag, ns] of [["--namespace", namespace], ["--tenet-namespace", tenetNamespace]]) {
      if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(ns)) return usage(`${flag} ${JSON.stringify(ns)} is not a namespace name (lowercase letters, digits and '-', at most 63)`);
    }
    const at = one(flags, "at", "--at");
    now = at !== undefined ? new Date(at) : deps.now();
    if (at !== undefined && (!/^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2}))?$/.test(at) || isNaN(now.getTime()))) return usage(`--at ${JSON.stringify(at)} is not an RFC 3339 time (e.g. 2027-07-01T00:00:00Z)`);
    const scanList = one(flags, "scanNamespaces", "--scan-namespaces") ?? deps.env.TENET_SCAN_NAMESPACES;
    scanNamespaces = scanList !== undefined ? scanList.split(",").map((s) => s.trim()).filter(Boolean) : ["trivy-system", tenetNamespace];
    user = one(flags, "user", "--user") ?? "tenet-check";
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    return usage(err.message);
  }
  const paths = [...args, ...(flags.filename ?? [])];
  if (paths.length === 0) return usage("no inputs: give files, directories, or - for stdin");

  let injection;
  try {
    injection = injectionConfigFromEnv(deps.env, tenetNamespace);
  } catch (err) {
    deps.stderr(`tenet check: ${(err as Error).message}\n`);
    return EXIT.error;
  }
  const failOnWarn = bools.has("failOnWarn");
  const strict = bools.has("strict");
  const inputs = readInputs(paths, { namespace, tenetNamespace, recursive: bools.has("recursive") }, deps);

  let report: CheckReport;
  let verdict: Verdict;
  if (inputs.errors.length) {
    report = { checkedAt: now.toISOString(), results: [], policies: [], summary: { workloads: 0, denied: 0, warned: 0, admitted: 0, unmatched: 0, unusedPolicies: 0 } };
    verdict = { code: EXIT.error, why: `${inputs.errors.length} input error${inputs.errors.length === 1 ? "" : "s"}; nothing was judged` };
    for (const e of inputs.errors) deps.stderr(`tenet check: ${e}\n`);
  } else {
    report = await check(inputs, { now, injection, scanNamespaces, user });
    verdict = verdictOf(report, { failOnWarn, strict });
  }
  const errors = inputs.errors;
  switch (output) {
    case "json":
      deps.stdout(formatJSON(report, verdict, { ignored: inputs.ignored, errors }));
      break;
    case "junit":
      deps.stdout(formatJUnit(report, verdict, { failOnWarn, strict, errors }));
      break;
    case "sarif":
      deps.stdout(formatSARIF(report, verdict, { failOnWarn, strict, errors, version, commandLine: ["tenet", "check", ...argv].map((a) => (a.length > 256 ? `${a.slice(0, 256)}…` : a)) }));
      break;
    default:
      if (!errors.length) deps.stdout(formatText(report, verdict, { verbose: bools.has("verbose"), ignored: inputs.ignored }));
      else deps.stderr(`tenet check: exit ${verdict.code} (${verdict.why})\n`);
  }
  return verdict.code;
}
