// Identical scan data, held once: many pods share one image, many images share one base layer,
// and the reports repeat the same findings (same CVE, package, versions, title) and often the
// same whole list. The scan index keeps one frozen object per distinct finding and one frozen
// array per distinct list, counted by the records that use them, so 10,000 reports cost the
// distinct findings, not every copy (issue 15 item 3). Evaluators cache their tallies per list
// (policy/vulnerabilities.ts), so records with the same findings share those too.
import { createHash } from "node:crypto";
import type { ScanRecord, Vulnerability } from "./records.ts";

interface Counted<T> {
  value: T;
  refs: number;
}

export class ScanInterner {
  private readonly findings = new Map<string, Counted<Vulnerability>>();
  private readonly lists = new Map<string, Counted<readonly Vulnerability[]> & { keys: string[] }>();

  /** Distinct findings and lists held (tests, the memory benchmark). */
  get stats() {
    return { findings: this.findings.size, lists: this.lists.size };
  }

  /** The record with its findings list shared; call release() with the result when it leaves the index. */
  intern(rec: ScanRecord): ScanRecord {
    const keys = rec.vulnerabilities.map(findingKey);
    const listKey = createHash("sha256").update(keys.join("\n")).digest("base64");
    let list = this.lists.get(listKey);
    if (list) list.refs++;
    else {
      const value = Object.freeze(rec.vulnerabilities.map((v, i) => this.finding(keys[i], v)));
      this.lists.set(listKey, (list = { value, refs: 1, keys }));
    }
    const out: ScanRecord = { ...rec, vulnerabilities: list.value as Vulnerability[] };
    listKeys.set(out, listKey);
    return out;
  }

  release(rec: ScanRecord): void {
    const listKey = listKeys.get(rec);
    const list = listKey === undefined ? undefined : this.lists.get(listKey);
    if (!list || --list.refs > 0) return;
    this.lists.delete(listKey!);
    for (const k of list.keys) {
      const f = this.findings.get(k)!;
      if (--f.refs === 0) this.findings.delete(k);
    }
  }

  private finding(key: string, v: Vulnerability): Vulnerability {
    const f = this.findings.get(key);
    if (f) {
      f.refs++;
      return f.value;
    }
    const value = Object.freeze({ ...v });
    this.findings.set(key, { value, refs: 1 });
    return value;
  }
}

const listKeys = new WeakMap<ScanRecord, string>();

/** Every field of a finding, in a fixed order (JSON keeps the fields apart whatever they contain). */
const findingKey = (v: Vulnerability) => JSON.stringify([v.id, v.severity, v.pkg, v.installedVersion, v.fixedVersion, v.title]);
