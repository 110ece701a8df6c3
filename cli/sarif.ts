// `tenet check --output sarif`: SARIF 2.1.0 (OASIS), the format code-scanning dashboards read.
// One result per denial, warning and unmatched object, located at the manifest's file and line;
// ruleId names the RuntimeRule that decided (or the webhook check: InjectionConflict, …).
import type { CheckReport } from "./check.ts";
import type { Verdict } from "./report.ts";

/** A file path as a SARIF artifactLocation uri: relative, forward slashes, percent-encoded. */
function uriOf(file: string): string {
  if (file === "(stdin)") return "stdin";
  return file.split(/[\\/]/).map((s) => encodeURIComponent(s)).join("/");
}

export function formatSARIF(r: CheckReport, v: Verdict, opts: { failOnWarn: boolean; strict: boolean; errors: string[]; version: string; commandLine: string[] }): string {
  const rules = new Map<string, { id: string; shortDescription: { text: string }; help: { text: string } }>();
  const rule = (id: string, text: string) => {
    if (!rules.has(id)) rules.set(id, { id, shortDescription: { text }, help: { text: "Tenet's docs/cli.md explains each result; the message names the rule and the fix." } });
    return id;
  };
  const results: unknown[] = [];
  const at = (x: { file: string; line: number }, name: string, kind: string) => [
    { physicalLocation: { artifactLocation: { uri: uriOf(x.file) }, region: { startLine: Math.max(1, x.line) } }, logicalLocations: [{ name, fullyQualifiedName: name, kind }] },
  ];
  for (const x of r.results) {
    const loc = at(x, x.object, "resource");
    for (const d of x.denials) {
      const denying = d.stage === "validate" && d.reason === "RuntimeRuleViolation" ? x.rules.filter((y) => y.decision === "deny") : [];
      const id = denying.length ? rule(`RuntimeRule/${denying[0].rule}`, `RuntimeRule ${denying[0].rule} refuses the workload`) : rule(d.reason, `Tenet's ${d.stage === "validate" ? "validating" : "mutating"} webhook refuses the object (${d.reason})`);
      results.push({ ruleId: id, level: "error", kind: "fail", message: { text: d.message }, locations: loc, properties: { outcome: x.outcome, reason: d.reason, stage: d.stage } });
    }
    for (const w of x.warnings) {
      const ruleName = /^RuntimeRule (\S+?)(?: \(audit\))?[: ]/.exec(w)?.[1];
      const id = ruleName ? rule(`RuntimeRule/${ruleName}`, `RuntimeRule ${ruleName}`) : rule("AdmissionWarning", "Tenet admits the workload with a warning");
      results.push({ ruleId: id, level: opts.failOnWarn ? "error" : "warning", kind: "fail", message: { text: w }, locations: loc, properties: { outcome: x.outcome } });
    }
    if (x.outcome === "unmatched") {
      results.push({ ruleId: rule("Unmatched", "No RuntimeRule selects the workload"), level: opts.strict ? "error" : "note", kind: opts.strict ? "fail" : "informational", message: { text: `no RuntimeRule in namespace ${x.namespace} selects ${x.object}` }, locations: loc });
    }
  }
  for (const p of r.policies.filter((p) => p.selects.length === 0)) {
    results.push({ ruleId: rule("Unmatched", "A policy selects no workload"), level: opts.strict ? "error" : "note", kind: opts.strict ? "fail" : "informational", message: { text: `${p.kind} ${p.name} selects no workload in the inputs` }, locations: at(p, `${p.kind} ${p.name}`, "resource") });
  }
  const log = {
    $schema: "https://json.schemastore.org/sarif-2.1.0.json",
    version: "2.1.0",
    runs: [
      {
        tool: { driver: { name: "tenet check", version: opts.version, rules: [...rules.values()] } },
        invocations: [
          {
            executionSuccessful: opts.errors.length === 0,
            exitCode: v.code,
            exitCodeDescription: v.why,
            arguments: opts.commandLine,
            toolExecutionNotifications: opts.errors.map((e) => ({ level: "error", message: { text: e } })),
          },
        ],
        results,
        columnKind: "utf16CodeUnits",
      },
    ],
  };
  return JSON.stringify(log, null, 2) + "\n";
}
