// What `tenet check` reads: manifests from files, directories and stdin (multi-document YAML or
// JSON, `List` kinds expanded), sorted into what admission needs — workloads, Namespaces,
// RuntimeRules, APIPolicies, ServiceIdentities — and scan data (Trivy JSON reports,
// VulnerabilityReports, Tenet's Trivy ConfigMaps). Every problem is collected with the file,
// line and document it is in, so one run names all of them.
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { isDeepStrictEqual } from "node:util";
import { ADMISSION_KINDS } from "../admission/review.ts";
import { TRIVY_REPORT_LABEL } from "../common/names.ts";
import { podSpecOf } from "../policy/admission.ts";
import { fromTrivyJSON, fromVulnerabilityReport } from "../scans/parse.ts";
import { applyDefaults } from "./defaults.ts";
import { ScanParseError, type ScanRecord } from "../scans/records.ts";

/** Bounds on what one run reads: a pipeline's rendered manifests fit many times over; a flood does not. */
export const LIMITS = {
  fileBytes: 32 * 1024 * 1024,
  totalBytes: 128 * 1024 * 1024,
  documents: 20_000,
  /** As the webhook's JSON parser (operator/server/json.ts MAX_JSON_DEPTH). */
  depth: 64,
  /** YAML aliases per document: a "billion laughs" document stops here. */
  aliases: 100,
};

export interface ReadDeps {
  readFile: (file: string) => Buffer;
  readStdin: () => Buffer;
  /** undefined when the path does not exist. */
  stat: (file: string) => { isDirectory(): boolean; size: number } | undefined;
  readDir: (dir: string) => string[];
}

export const fsReadDeps: ReadDeps = {
  readFile: (f) => fs.readFileSync(f),
  readStdin: () => fs.readFileSync(0),
  stat: (f) => {
    try {
      return fs.statSync(f);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  },
  readDir: (d) => fs.readdirSync(d),
};

/** Where an object came from: `file`, 1-based `line`, and a readable `where` ("a.yaml:12 (document 2)"). */
export interface Origin {
  file: string;
  line: number;
  where: string;
}

export interface Located extends Origin {
  obj: any;
}

export interface ScanInput extends Origin {
  key: string;
  record: ScanRecord;
  /** The namespace the record speaks for (undefined: every namespace, as the CLI's own report files). */
  namespace?: string;
}

export interface Inputs {
  workloads: Located[];
  namespaces: Map<string, Located>;
  rules: Located[];
  apiPolicies: Located[];
  identities: Located[];
  scans: ScanInput[];
  /** Objects that admission does not judge (Services, ConfigMaps, …), and why. */
  ignored: (Origin & { object: string; why: string })[];
  errors: string[];
}

export interface ReadOptions {
  /** The namespace of namespaced objects that name none (kubectl's -n). */
  namespace: string;
  /** Tenet's namespace: the operator reads Trivy ConfigMaps there only. */
  tenetNamespace: string;
  recursive: boolean;
}

const MANIFEST = /\.(ya?ml|json)$/i;
const TENET_KINDS = new Set(["RuntimeRule", "APIPolicy", "ServiceIdentity"]);

export function readInputs(paths: string[], opts: ReadOptions, deps: ReadDeps = fsReadDeps): Inputs {
  const out: Inputs = { workloads: [], namespaces: new Map(), rules: [], apiPolicies: [], identities: [], scans: [], ignored: [], errors: [] };
  let total = 0;
  let documents = 0;
  let stdinRead = false;
  const seen = new Map<string, Located>();

  const files: string[] = [];
  for (const p of paths) {
    if (p === "-") {
      if (stdinRead) out.errors.push(`"-" (stdin) is given twice; stdin can be read once`);
      else files.push("-");
      stdinRead = true;
      continue;
    }
    const st = deps.stat(p);
    if (!st) {
      out.errors.push(`${p}: no such file or directory`);
      continue;
    }
    if (st.isDirectory()) {
      const found = walk(p, opts.recursive, deps);
      if (found.length === 0) out.errors.push(`${p}: a directory with no .yaml, .yml or .json files${opts.recursive ? "" : " (add -R to read its subdirectories)"}`);
      files.push(...found);
    } else files.push(p);
  }

  for (const file of files) {
    const name = file === "-" ? "(stdin)" : file;
    let buf: Buffer;
    try {
      if (file !== "-") {
        const size = deps.stat(file)?.size ?? 0;
        if (size > LIMITS.fileBytes) throw new Error(`it is ${size} bytes, over the limit of ${LIMITS.fileBytes}; split it`);
      }
      buf = file === "-" ? deps.readStdin() : deps.readFile(file);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      out.errors.push(`${name}: cannot read it: ${e.code === "EACCES" ? "permission denied" : e.message}`);
      continue;
    }
    if (buf.length > LIMITS.fileBytes) {
      out.errors.push(`${name}: ${buf.length} bytes, over the limit of ${LIMITS.fileBytes} bytes per input; split it`);
      continue;
    }
    total += buf.length;
    if (total > LIMITS.totalBytes) {
      out.errors.push(`${name}: the inputs together exceed ${LIMITS.totalBytes} bytes; check fewer at a time`);
      break;
    }
    const text = buf.toString("utf8");
    if (text.includes("\u0000")) {
      out.errors.push(`${name}: not a text file (it contains NUL bytes); give YAML or JSON manifests`);
      continue;
    }
    const lines = lineStarts(text);
    let docs: YAML.Document.Parsed[];
    try {
      docs = YAML.parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true }) as YAML.Document.Parsed[];
    } catch (err) {
      out.errors.push(`${name}: not YAML: ${(err as Error).message}`);
      continue;
    }
    if (!Array.isArray(docs)) docs = [docs as unknown as YAML.Document.Parsed];
    docs.forEach((doc, i) => {
      const line = lineOf(lines, doc.range?.[0] ?? 0);
      const origin: Origin = { file: name, line, where: `${name}:${line}${docs.length > 1 ? ` (document ${i + 1})` : ""}` };
      if (doc.errors.length) {
        const e = doc.errors[0];
        const at = e.linePos?.[0] ? `${name}:${e.linePos[0].line}` : origin.where;
        out.errors.push(`${at}: invalid YAML: ${e.message.split("\n")[0]}${doc.errors.length > 1 ? ` (and ${doc.errors.length - 1} more problems in this document)` : ""}`);
        return;
      }
      if (++documents > LIMITS.documents) {
        if (documents === LIMITS.documents + 1) out.errors.push(`${origin.where}: more than ${LIMITS.documents} documents in the inputs; check fewer at a time`);
        return;
      }
      let value: unknown;
      try {
        value = doc.toJS({ maxAliasCount: LIMITS.aliases });
      } catch (err) {
        out.errors.push(`${origin.where}: cannot read the document: ${(err as Error).message}`);
        return;
      }
      if (value === null || value === undefined) return; // an empty document (a trailing `---`)
      const depth = depthOf(value);
      if (depth > LIMITS.depth) {
        out.errors.push(`${origin.where}: nested ${depth} levels deep; the limit is ${LIMITS.depth} (as the webhook's)`);
        return;
      }
      classify(value, origin, opts, out, seen);
    });
  }
  return out;
}

function walk(dir: string, recursive: boolean, deps: ReadDeps): string[] {
  const out: string[] = [];
  for (const entry of deps.readDir(dir).sort()) {
    if (entry.startsWith(".")) continue;
    const full = path.join(dir, entry);
    const st = deps.stat(full);
    if (!st) continue;
    if (st.isDirectory()) {
      if (recursive) out.push(...walk(full, true, deps));
    } else if (MANIFEST.test(entry)) out.push(full);
  }
  return out;
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) starts.push(i + 1);
  return starts;
}

function lineOf(starts: number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}

/** Nesting depth without recursion, so a hostile document cannot overflow the stack. */
function depthOf(v: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[v, 1]];
  while (stack.length) {
    const [x, d] = stack.pop()!;
    if (x === null || typeof x !== "object") continue;
    if (d > max) max = d;
    if (d > LIMITS.depth) return d;
    for (const c of Object.values(x as object)) if (c !== null && typeof c === "object") stack.push([c, d + 1]);
  }
  return max;
}

const isObject = (v: unknown): v is Record<string, any> => typeof v === "object" && v !== null && !Array.isArray(v);

/** "Deployment demo/orders" */
export function describe(obj: any): string {
  const m = obj?.metadata ?? {};
  return `${obj?.kind} ${m.namespace ? `${m.namespace}/` : ""}${m.name ?? (m.generateName ? `${m.generateName}*` : "(unnamed)")}`;
}

function classify(value: unknown, origin: Origin, opts: ReadOptions, out: Inputs, seen: Map<string, Located>, inList = false): void {
  const bad = (why: string) => out.errors.push(`${origin.where}: ${why}`);
  if (!isObject(value)) return void bad(`expected a Kubernetes object (a mapping with apiVersion and kind), got ${Array.isArray(value) ? "a list" : typeof value}`);
  // A Trivy JSON report (`trivy image --format json`): no kind, a SchemaVersion.
  if (value.kind === undefined && value.apiVersion === undefined && ("SchemaVersion" in value || "ArtifactName" in value)) {
    try {
      out.scans.push({ ...origin, key: `file/${origin.where}`, record: fromTrivyJSON(value, origin.where) });
    } catch (err) {
      if (!(err instanceof ScanParseError)) throw err;
      bad(`unreadable Trivy report: ${err.message.replace(`${origin.where}: `, "")}`);
    }
    return;
  }
  const { kind, apiVersion } = value;
  if (typeof kind !== "string" || !kind || typeof apiVersion !== "string" || !apiVersion) {
    return void bad(`not a Kubernetes object: it has no ${typeof kind !== "string" || !kind ? "kind" : "apiVersion"} (a Trivy JSON report needs SchemaVersion and ArtifactName)`);
  }
  if (kind.endsWith("List") && Array.isArray(value.items)) {
    if (inList) return void bad(`a ${kind} inside a List is not supported; flatten it`);
    value.items.forEach((item: unknown, i: number) => classify(item, { ...origin, where: `${origin.where} items[${i}]` }, opts, out, seen, true));
    return;
  }
  if (!isObject(value.metadata)) value.metadata = {};
  const meta = value.metadata;
  if (meta.name !== undefined && typeof meta.name !== "string") return void bad(`${kind} has a metadata.name that is not a string`);
  if (meta.namespace !== undefined && (typeof meta.namespace !== "string" || !meta.namespace)) return void bad(`${kind} ${meta.name ?? ""} has a metadata.namespace that is not a non-empty string`);
  const group = apiVersion.includes("/") ? apiVersion.split("/")[0] : "";
  const isTenet = group === "tenet.dev" && TENET_KINDS.has(kind);
  const judged = ADMISSION_KINDS.has(kind) && (kind === "Pod" ? group === "" : group === (kind === "Job" || kind === "CronJob" ? "batch" : "apps"));
  if (kind === "Namespace" && group === "") {
    if (!meta.name) return void bad("Namespace has no metadata.name");
    const labels = meta.labels ?? {};
    if (!isObject(labels) || Object.values(labels).some((v) => typeof v !== "string")) return void bad(`Namespace ${meta.name}: metadata.labels must map strings to strings`);
    remember(`Namespace/${meta.name}`, { ...origin, obj: value }, out, seen, () => out.namespaces.set(meta.name, { ...origin, obj: value }));
    return;
  }
  // Namespaced from here on (everything we read is).
  meta.namespace ??= opts.namespace;
  if (isTenet || judged || kind === "VulnerabilityReport") {
    if (!meta.name) return void bad(`${kind} has no metadata.name; name it (kubectl apply needs one)`);
    if (!isObject(value.spec) && kind !== "VulnerabilityReport") return void bad(`${describe(value)} has no spec`);
    if (meta.labels !== undefined && !isObject(meta.labels)) return void bad(`${describe(value)}: metadata.labels must be a mapping`);
  }
  const located: Located = { ...origin, obj: value };
  const key = `${kind}/${meta.namespace}/${meta.name}`;
  if (judged) {
    const held = podSpecOf(kind, value);
    if (!held || !Array.isArray(held.podSpec.containers) || held.podSpec.containers.length === 0) {
      return void bad(`${describe(value)} has no ${kind === "Pod" ? "spec" : kind === "CronJob" ? "spec.jobTemplate.spec.template.spec" : "spec.template.spec"}.containers; the API server would refuse it`);
    }
    if (Object.values(held.labels).some((v) => typeof v !== "string")) return void bad(`${describe(value)}: pod labels must be strings (quote values such as "true" or "1.0")`);
    return remember(key, located, out, seen, () => out.workloads.push(located));
  }
  if (isTenet) {
    applyDefaults(kind, value); // as the API server stores it, so as the webhook judges it
    const list = kind === "RuntimeRule" ? out.rules : kind === "APIPolicy" ? out.apiPolicies : out.identities;
    return remember(key, located, out, seen, () => list.push(located));
  }
  if (kind === "VulnerabilityReport" && group === "aquasecurity.github.io") {
    try {
      const record = fromVulnerabilityReport(value);
      return remember(key, located, out, seen, () => out.scans.push({ ...origin, key: `vr/${meta.namespace}/${meta.name}`, record, namespace: meta.namespace }));
    } catch (err) {
      if (!(err instanceof ScanParseError)) throw err;
      return void bad(`unreadable VulnerabilityReport: ${err.message}`);
    }
  }
  if (kind === "ConfigMap" && group === "" && meta.labels?.[TRIVY_REPORT_LABEL] === "true") {
    if (meta.namespace !== opts.tenetNamespace) {
      out.ignored.push({ ...origin, object: describe(value), why: `Tenet reads Trivy report ConfigMaps in its own namespace (${opts.tenetNamespace}) only` });
      return;
    }
    const scans: ScanInput[] = [];
    for (const [file, text] of Object.entries(isObject(value.data) ? value.data : {})) {
      const source = `ConfigMap ${meta.namespace}/${meta.name} key ${file}`;
      let doc: unknown;
      try {
        doc = JSON.parse(String(text));
      } catch {
        return void bad(`${source} is not JSON`);
      }
      try {
        scans.push({ ...origin, key: `cm/${meta.name}/${file}`, record: fromTrivyJSON(doc, source), namespace: meta.namespace });
      } catch (err) {
        if (!(err instanceof ScanParseError)) throw err;
        return void bad(`unreadable Trivy report: ${err.message}`);
      }
    }
    return remember(key, located, out, seen, () => out.scans.push(...scans));
  }
  out.ignored.push({ ...origin, object: describe(value), why: isTenet || TENET_KINDS.has(kind) ? `apiVersion ${apiVersion} is not tenet.dev/v1alpha1` : "admission does not judge this kind" });
}

/** Adds an object once: the same object twice (stream and -f) counts once; two different ones under one name are an error. */
function remember(key: string, located: Located, out: Inputs, seen: Map<string, Located>, add: () => void): void {
  const before = seen.get(key);
  if (!before) {
    seen.set(key, located);
    add();
    return;
  }
  if (isDeepStrictEqual(before.obj, located.obj)) return;
  out.errors.push(`${located.where}: ${describe(located.obj)} is also defined at ${before.where}, differently; keep one`);
}
