// What `tenet check` says: its exit code, and the report as text or JSON (JUnit and SARIF in
// junit.ts and sarif.ts). Messages are the webhook's own, word for word.
import type { CheckReport, ObjectResult } from "./check.ts";

/** The exit codes of `tenet check` (docs/cli.md). */
export const EXIT = {
  /** Every workload admitted (warnings allowed unless --fail-on-warn). */
  ok: 0,
  /** At least one object would be refused. */
  denied: 1,
  /** Bad input or usage: nothing was judged. */
  error: 2,
  /** Warnings only, with --fail-on-warn. */
  warnings: 3,
  /** Nothing matched: no workload, or no RuntimeRule selects any workload (with --strict: any policy or workload left unmatched). */
  unmatched: 4,
} as const;

export interface Verdict {
  code: number;
  /** One line: why this exit code. */
  why: string;
}

export function verdictOf(r: CheckReport, opts: { failOnWarn: boolean; strict: boolean }): Verdict {
  const s = r.summary;
  if (s.denied) return { code: EXIT.denied, why: `${s.denied} of ${s.workloads} workload${s.workloads === 1 ? "" : "s"} would be refused` };
  if (s.workloads === 0) return { code: EXIT.unmatched, why: "no workload in the inputs (Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs): nothing was checked" };
  if (s.unmatched === s.workloads) return { code: EXIT.unmatched, why: `no RuntimeRule selects any of the ${s.workloads} workload${s.workloads === 1 ? "" : "s"}: nothing was checked (are the rules in the inputs, in the workloads' namespaces, with selectors that still match?)` };
  if (opts.strict && (s.unmatched || s.unusedPolicies)) {
    const parts = [s.unmatched ? `${s.unmatched} workload${s.unmatched === 1 ? "" : "s"} no RuntimeRule selects` : "", s.unusedPolicies ? `${s.unusedPolicies} polic${s.unusedPolicies === 1 ? "y" : "ies"} selecting no workload` : ""].filter(Boolean);
    return { code: EXIT.unmatched, why: `--strict: ${parts.join(" and ")}` };
  }
  if (s.warned && opts.failOnWarn) return { code: EXIT.warnings, why: `--fail-on-warn: ${s.warned} workload${s.warned === 1 ? "" : "s"} admitted with warnings` };
  return { code: EXIT.ok, why: s.warned ? `admitted, ${s.warned} with warnings` : "admitted" };
}

const LABEL: Record<ObjectResult["outcome"], string> = { denied: "DENIED", warned: "WARN", admitted: "OK", unmatched: "UNMATCHED" };

export function formatText(r: CheckReport, v: Verdict, opts: { verbose: boolean; ignored: { object: string; where: string; why: string }[] }): string {
  const lines: string[] = [];
  for (const x of r.results) {
    lines.push(`${LABEL[x.outcome].padEnd(9)} ${x.object}  ${x.where}`);
    for (const d of x.denials) lines.push(`  ${d.message}`);
    for (const w of x.warnings) lines.push(`  warning: ${w}`);
    if (x.outcome === "unmatched") lines.push(`  no RuntimeRule in namespace ${x.namespace} selects it`);
    if (opts.verbose || x.outcome === "admitted") for (const rule of x.rules) if (rule.decision === "allow") lines.push(`  ${rule.message}`);
    if (opts.verbose) lines.push(`  injection: ${x.injection}`);
  }
  const unused = r.policies.filter((p) => p.selects.length === 0);
  for (const p of unused) lines.push(`note: ${p.kind} ${p.name} (${p.where}) selects no workload in the inputs${p.invalidSelector ? `: its selector is invalid (${p.invalidSelector})` : ""}`);
  if (opts.verbose) for (const i of opts.ignored) lines.push(`skipped: ${i.object} (${i.where}): ${i.why}`);
  const s = r.summary;
  lines.push(
    `${s.workloads} workload${s.workloads === 1 ? "" : "s"}: ${s.denied} denied, ${s.warned} with warnings, ${s.admitted} admitted, ${s.unmatched} unmatched; ${r.policies.length} polic${r.policies.length === 1 ? "y" : "ies"}, ${s.unusedPolicies} selecting nothing — exit ${v.code} (${v.why})`,
  );
  return lines.join("\n") + "\n";
}

export function formatJSON(r: CheckReport, v: Verdict, extra: { ignored: unknown[]; errors: string[] }): string {
  return JSON.stringify({ exitCode: v.code, why: v.why, ...r, ignored: extra.ignored, errors: extra.errors }, null, 2) + "\n";
}
