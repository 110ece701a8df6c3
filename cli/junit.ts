// `tenet check --output junit`: the JUnit XML that CI systems show as test results (the
// Jenkins/Ant schema shape: testsuites > testsuite > testcase with failure/error/skipped).
// One testcase per workload; input errors are testcases with an <error>.
import type { CheckReport } from "./check.ts";
import type { Verdict } from "./report.ts";

/** XML-escaped text; characters XML 1.0 cannot carry at all (most control characters) are dropped. */
export function xmlEscape(s: string): string {
  return s
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

export function formatJUnit(r: CheckReport, v: Verdict, opts: { failOnWarn: boolean; strict: boolean; errors: string[] }): string {
  const cases: string[] = [];
  let failures = 0;
  let skipped = 0;
  for (const x of r.results) {
    const attrs = `classname="${xmlEscape(`tenet.${x.kind}.${x.namespace}`)}" name="${xmlEscape(x.object)}" file="${xmlEscape(x.file)}" line="${x.line}" time="0"`;
    const out = x.warnings.length ? `<system-out>${xmlEscape(x.warnings.map((w) => `warning: ${w}`).join("\n"))}</system-out>` : "";
    if (x.outcome === "denied") {
      failures++;
      const message = x.denials.map((d) => d.message).join("\n");
      cases.push(`    <testcase ${attrs}>\n      <failure message="${xmlEscape(message)}" type="${xmlEscape(x.denials[0].reason)}">${xmlEscape(message)}</failure>${out}\n    </testcase>`);
    } else if (x.outcome === "warned" && opts.failOnWarn) {
      failures++;
      const message = x.warnings.join("\n");
      cases.push(`    <testcase ${attrs}>\n      <failure message="${xmlEscape(message)}" type="AdmittedWithWarnings">${xmlEscape(message)}</failure>${out}\n    </testcase>`);
    } else if (x.outcome === "unmatched") {
      const message = `no RuntimeRule in namespace ${x.namespace} selects it`;
      if (opts.strict) {
        failures++;
        cases.push(`    <testcase ${attrs}>\n      <failure message="${xmlEscape(message)}" type="Unmatched">${xmlEscape(message)}</failure>\n    </testcase>`);
      } else {
        skipped++;
        cases.push(`    <testcase ${attrs}>\n      <skipped message="${xmlEscape(message)}"/>\n    </testcase>`);
      }
    } else cases.push(`    <testcase ${attrs}>${out ? `\n      ${out}\n    ` : ""}</testcase>`);
  }
  for (const p of r.policies.filter((p) => p.selects.length === 0)) {
    const attrs = `classname="${xmlEscape(`tenet.${p.kind}`)}" name="${xmlEscape(`${p.kind} ${p.name} selects a workload`)}" file="${xmlEscape(p.file)}" line="${p.line}" time="0"`;
    const message = `${p.kind} ${p.name} selects no workload in the inputs`;
    if (opts.strict) {
      failures++;
      cases.push(`    <testcase ${attrs}>\n      <failure message="${xmlEscape(message)}" type="Unmatched">${xmlEscape(message)}</failure>\n    </testcase>`);
    } else {
      skipped++;
      cases.push(`    <testcase ${attrs}>\n      <skipped message="${xmlEscape(message)}"/>\n    </testcase>`);
    }
  }
  opts.errors.forEach((e, i) => {
    cases.push(`    <testcase classname="tenet.input" name="input ${i + 1}" time="0">\n      <error message="${xmlEscape(e)}" type="InputError">${xmlEscape(e)}</error>\n    </testcase>`);
  });
  const counts = `tests="${cases.length}" failures="${failures}" errors="${opts.errors.length}"`;
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="tenet check" ${counts} time="0">`,
    `  <testsuite name="tenet check" ${counts} skipped="${skipped}" time="0" timestamp="${r.checkedAt.replace(/\.\d+Z$/, "")}" hostname="localhost">`,
    `    <properties>\n      <property name="exitCode" value="${v.code}"/>\n      <property name="why" value="${xmlEscape(v.why)}"/>\n    </properties>`,
    ...cases,
    `  </testsuite>`,
    `</testsuites>`,
  ].join("\n") + "\n";
}
