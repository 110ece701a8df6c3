// Scan data: what Tenet knows about an image's vulnerabilities, in one record shape whatever the
// scanner's format (parsers in scans/parse.ts, lookup in scans/scan-index.ts).
import type { ImageRef } from "../common/images.ts";

export type Severity = "CRITICAL" | "HIGH" | "MEDIUM" | "LOW" | "UNKNOWN";
export const SEVERITIES: readonly Severity[] = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"];

export interface Vulnerability {
  id: string;
  severity: Severity;
  pkg?: string;
  installedVersion?: string;
  fixedVersion?: string;
  title?: string;
}

export interface ScanRecord {
  image: ImageRef;
  /** e.g. "VulnerabilityReport demo/replicaset-orders-app" or "ConfigMap tenet-system/trivy-reports key orders.json" */
  source: string;
  scannedAt?: string;
  vulnerabilities: Vulnerability[];
}

export class ScanParseError extends Error {
  override name = "ScanParseError";
}

/**
 * The id of a vulnerability known only from a report's summary counts. Such entries can never be
 * exempted (exemption ids are CVE or GHSA ids), and since nobody knows whether they have a fix,
 * ignoreUnfixed does not drop them either: an incomplete report must not make an image look cleaner.
 */
export const SUMMARY_ONLY_ID = "UNKNOWN";
