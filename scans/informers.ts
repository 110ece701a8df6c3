// The operator's side of scan data: informers over the two places scan reports live (Trivy
// Operator VulnerabilityReports in any namespace; ConfigMaps of Trivy JSON in Tenet's namespace,
// labelled TRIVY_REPORT_LABEL=true) that parse every report on arrival and keep one ScanIndex in
// step. Admission decides from the index, posture re-evaluates the pods whose images a changed
// source describes. The only module of scans/ that uses the operator's runtime: the CLI and the
// evaluators use records, parsers and the index only.
import { repositoryOf } from "../common/images.ts";
import { Resources, type Kube } from "../common/kube.ts";
import type { Logger } from "../common/logger.ts";
import { TRIVY_REPORT_LABEL } from "../common/names.ts";
import type { KubeObject } from "../common/objects.ts";
import { Informer } from "../operator/runtime/informer.ts";
import { fromTrivyJSON, fromVulnerabilityReport } from "./parse.ts";
import { ScanParseError, type ScanRecord } from "./records.ts";
import { ScanIndex } from "./scan-index.ts";

export const VulnerabilityReports = { group: "aquasecurity.github.io", version: "v1alpha1", plural: "vulnerabilityreports" };

/** What the informers cache of a report object: the index keys it filled and the images it describes. */
export interface ScanSource extends KubeObject {
  keys: string[];
  /** Image repositories the source describes (common/images.ts repositoryOf), so rescans find the pods to re-evaluate. */
  repositories: string[];
}

export interface ScanFeed {
  index: ScanIndex;
  reports: Informer<ScanSource>;
  trivyConfigMaps: Informer<ScanSource>;
  informers: Informer<ScanSource>[];
}

/**
 * `trustedNamespaces`: scanner namespaces whose reports apply to pods in every namespace
 * (TENET_SCAN_NAMESPACES); a report anywhere else applies to pods of its own namespace only.
 */
export function createScanFeed(ctx: { kube: Kube; log: Logger; namespace: string; trustedNamespaces?: string[] }): ScanFeed {
  const { kube } = ctx;
  const log = ctx.log.child({ component: "scans" });
  const index = new ScanIndex(ctx.trustedNamespaces ?? ["trivy-system", ctx.namespace]);

  // Keep only the parsed record; a malformed report is logged and skipped, never fatal.
  const scanSource = (source: string, parse: (raw: any) => { key: string; record: ScanRecord }[]) => (raw: any): ScanSource => {
    const meta = { name: raw.metadata.name, namespace: raw.metadata.namespace, resourceVersion: raw.metadata.resourceVersion, uid: raw.metadata.uid };
    const keys: string[] = [];
    const repositories: string[] = [];
    try {
      for (const { key, record } of parse(raw)) {
        index.upsert(key, record, meta.namespace);
        keys.push(key);
        repositories.push(repositoryOf(record.image));
      }
    } catch (err) {
      const why = err instanceof ScanParseError ? err.message : String(err);
      log.warn({ source: `${source} ${meta.namespace}/${meta.name}`, err: why }, "ignoring unreadable scan report");
    }
    return { metadata: meta, keys, repositories };
  };
  const reports = new Informer<ScanSource>(kube, log, {
    name: "vulnerabilityreports",
    resource: VulnerabilityReports,
    optional: true,
    // Reports run to hundreds of findings each: 100 a page keeps a relist's raw JSON to a few MB.
    pageSize: 100,
    transform: scanSource("VulnerabilityReport", (raw) => [{ key: `vr/${raw.metadata.namespace}/${raw.metadata.name}`, record: fromVulnerabilityReport(raw) }]),
  });
  const trivyConfigMaps = new Informer<ScanSource>(kube, log, {
    name: "trivy-reports",
    resource: Resources.configMaps,
    namespace: ctx.namespace,
    labelSelector: `${TRIVY_REPORT_LABEL}=true`,
    transform: scanSource("ConfigMap", (raw) =>
      Object.entries(raw.data ?? {}).map(([file, text]) => {
        const source = `ConfigMap ${raw.metadata.namespace}/${raw.metadata.name} key ${file}`;
        let doc: unknown;
        try {
          doc = JSON.parse(String(text));
        } catch {
          throw new ScanParseError(`${source} is not JSON`);
        }
        return { key: `cm/${raw.metadata.name}/${file}`, record: fromTrivyJSON(doc, source) };
      }),
    ),
  });
  const informers = [reports, trivyConfigMaps];
  for (const inf of informers) {
    inf.onChange((type, obj, old) => {
      const stale = (old?.keys ?? []).filter((k) => type === "delete" || !obj.keys.includes(k));
      for (const k of type === "delete" ? obj.keys : stale) index.remove(k);
    });
  }
  return { index, reports, trivyConfigMaps, informers };
}
