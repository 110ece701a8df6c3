#!/usr/bin/env node
// `tenet` — the command line for pipelines and people operating Tenet (docs/cli.md):
//   tenet check [FILE | DIR | -]...   judges manifests offline with the admission webhooks' code
//   tenet check api …                 may identity X call METHOD PATH on workload Y?
//   tenet inspect cert <file | ->     what a workload certificate says (SPIFFE ID, SANs, identity
//                                     attributes, serial, issuer, validity, X509-SVID violations)
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { readCertIdentity, type CertIdentity } from "../pki/certificate.ts";
import { splitPEM } from "../pki/pem.ts";
import { svidViolations } from "../pki/svid.ts";
import { runCheck, type CheckDeps } from "./check-command.ts";
import { fsReadDeps } from "./input.ts";
import { TENET_VERSION } from "../common/version.ts";

export const USAGE = `usage: tenet check [FILE | DIR | -]... [flags]     (tenet check --help)
       tenet check api --as ID METHOD PATH --workload NS/NAME -f FILE...
       tenet inspect cert <file | -> [--json]

  check          judge workloads as Tenet's admission webhooks would (exit 0 admitted,
                 1 denied, 2 bad input, 3 warnings with --fail-on-warn, 4 nothing matched)
  check api      decide one API call as the workload's enforcer would

  inspect cert   show the SPIFFE ID, SANs, identity attributes, serial, issuer, validity and
                 X509-SVID rule violations of a certificate (PEM or DER; "-" reads stdin;
                 of several PEM certificates, the first)
  --json         one JSON object instead of text
`;

export interface CLIDeps {
  readFile: (file: string) => Buffer;
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  now: () => Date;
}

const defaultDeps: CLIDeps = {
  readFile: (file) => fs.readFileSync(file === "-" ? 0 : file),
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  now: () => new Date(),
};

export interface CertReport extends Omit<CertIdentity, "notBefore" | "notAfter"> {
  file: string;
  certificatesInFile: number;
  notBefore: string;
  notAfter: string;
  /** "valid" | "expired" | "not yet valid", at `checkedAt`. */
  validity: "valid" | "expired" | "not yet valid";
  checkedAt: string;
  svidViolations: string[];
}

/** What `inspect cert` reports for one input; throws when the input holds no readable certificate. */
export function inspectCert(input: Buffer, file: string, now: Date): CertReport {
  const id = readCertIdentity(input);
  const looksPEM = input.subarray(0, 1024).toString("latin1").includes("-----BEGIN ");
  const t = now.getTime();
  return {
    file,
    certificatesInFile: looksPEM ? splitPEM(input.toString("latin1")).length : 1,
    ...id,
    notBefore: id.notBefore.toISOString(),
    notAfter: id.notAfter.toISOString(),
    validity: t < id.notBefore.getTime() ? "not yet valid" : t > id.notAfter.getTime() ? "expired" : "valid",
    checkedAt: now.toISOString(),
    svidViolations: svidViolations(input),
  };
}

/** "2h 5m", "3d 0h", "45s": the largest unit of a duration and the one below it. */
export function humanDuration(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  const units: [string, number][] = [
    ["d", 86_400],
    ["h", 3600],
    ["m", 60],
    ["s", 1],
  ];
  const found = units.findIndex(([, n]) => s >= n);
  const i = found < 0 ? units.length - 1 : found;
  const [u, n] = units[i];
  if (i === units.length - 1) return `${s}${u}`;
  const [u2, n2] = units[i + 1];
  return `${Math.floor(s / n)}${u} ${Math.floor((s % n) / n2)}${u2}`;
}

export function formatReport(r: CertReport): string {
  const checked = Date.parse(r.checkedAt);
  const validity =
    r.validity === "valid"
      ? `valid now, expires in ${humanDuration(Date.parse(r.notAfter) - checked)}`
      : r.validity === "expired"
        ? `EXPIRED ${humanDuration(checked - Date.parse(r.notAfter))} ago`
        : `NOT YET VALID, starts in ${humanDuration(Date.parse(r.notBefore) - checked)}`;
  const list = (xs: string[]) => (xs.length ? xs.join(", ") : "(none)");
  const otherURIs = r.uris.filter((u) => u !== r.spiffeID);
  const lines = [
    `certificate   ${r.file}${r.certificatesInFile > 1 ? ` (the first of ${r.certificatesInFile} certificates)` : ""}`,
    `SPIFFE ID     ${r.spiffeID ?? "(none)"}`,
    ...(otherURIs.length ? [`other URIs    ${otherURIs.join(", ")}`] : []),
    `DNS names     ${list(r.dnsNames)}`,
    `IP addresses  ${list(r.ipAddresses)}`,
    `subject       ${r.subject || "(empty)"}`,
    `issuer        ${r.issuer || "(empty)"}`,
    `serial        ${r.serial}`,
    `validity      ${r.notBefore} → ${r.notAfter} (${validity})`,
    `CA            ${r.isCA ? "yes" : "no"}`,
  ];
  const keys = Object.keys(r.attributes);
  if (keys.length) {
    const w = Math.max(...keys.map((k) => k.length));
    lines.push("attributes");
    for (const k of keys) lines.push(`  ${k.padEnd(w)}  ${r.attributes[k]}`);
  } else lines.push("attributes    (none)");
  if (r.svidViolations.length) {
    lines.push(`X509-SVID     does NOT conform (${r.svidViolations.length} violation${r.svidViolations.length > 1 ? "s" : ""}):`);
    for (const v of r.svidViolations) lines.push(`  - ${v}`);
  } else lines.push("X509-SVID     conforms");
  return lines.join("\n") + "\n";
}

/** Runs the CLI; returns the exit code (0 ok, 1 unreadable input, 2 usage). */
export function run(argv: string[], deps: CLIDeps = defaultDeps): number {
  const json = argv.includes("--json");
  const args = argv.filter((a) => a !== "--json");
  if (args.includes("-h") || args.includes("--help")) {
    deps.stdout(USAGE);
    return 0;
  }
  const unknownFlag = args.find((a) => a.startsWith("--") || (a.startsWith("-") && a !== "-"));
  if (args[0] !== "inspect" || args[1] !== "cert" || args.length !== 3 || unknownFlag) {
    deps.stderr((unknownFlag ? `tenet: unknown option ${unknownFlag}\n` : "") + USAGE);
    return 2;
  }
  const file = args[2];
  const name = file === "-" ? "(stdin)" : file;
  let input: Buffer;
  try {
    input = deps.readFile(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === "ENOENT" ? "no such file" : e.code === "EISDIR" ? "it is a directory" : e.code === "EACCES" ? "permission denied" : e.message;
    deps.stderr(`tenet: cannot read ${name}: ${why}\n`);
    return 1;
  }
  let report: CertReport;
  try {
    if (input.length === 0) throw new Error("it is empty");
    report = inspectCert(input, name, deps.now());
  } catch (err) {
    deps.stderr(`tenet: ${name} holds no readable certificate: ${(err as Error).message}\n`);
    return 1;
  }
  deps.stdout(json ? JSON.stringify(report, null, 2) + "\n" : formatReport(report));
  return 0;
}

/** Every command; `check` is asynchronous (JWT signing, the metadata guard). */
export async function main(argv: string[], deps: CLIDeps & Partial<CheckDeps> = defaultDeps): Promise<number> {
  if (argv[0] === "check") return runCheck(argv.slice(1), { ...fsReadDeps, env: process.env, ...deps }, VERSION);
  return run(argv, deps);
}

/** The version `tenet` reports (SARIF tool.driver.version); the operator's injector version reads the same variable. */
const VERSION = TENET_VERSION;

// Run as a program (`tenet`, `node build/cli/tenet.js`, `tsx cli/tenet.ts`), also through the
// package bin's symlink: compare real paths.
const invoked = process.argv[1] && fs.existsSync(process.argv[1]) ? fs.realpathSync(process.argv[1]) : undefined;
if (invoked && import.meta.url === pathToFileURL(invoked).href) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err) => {
      process.stderr.write(`tenet: internal error: ${(err as Error)?.stack ?? err}\n`);
      process.exitCode = 2;
    },
  );
}
