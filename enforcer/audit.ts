// The audit log: one JSON line per attempt (inbound and outbound), on its own pino logger and
// destination (a file or stdout), separate from the operational log. Never a token, an
// Authorization header or a query string (which may carry credentials).
import { pino, type Logger } from "pino";

export interface AuditRecord {
  direction: "inbound" | "outbound";
  caller?: string;
  /** Key identity attributes of the caller: posture, tier, image. */
  posture?: string;
  tier?: string;
  image?: string;
  destination: string;
  method?: string;
  path?: string;
  api?: string;
  scope?: string;
  decision: "allow" | "deny";
  mode?: "enforce" | "audit";
  policy?: string;
  rule?: string;
  reason: string;
  status: number;
  latencyMs: number;
  policyVersion?: string;
  /** TLS or parser error code for attempts refused before a request was read. */
  detail?: string;
  /** Captured connections: the remote address (plaintext callers have no identity) and the protocol carried. */
  source?: string;
  protocol?: string;
  /** gRPC calls (protocol grpc): the grpc-status the caller got (from the app, or Tenet's refusal). */
  grpcStatus?: number;
  /** Outbound over mTLS: the SPIFFE ID the destination presented. */
  peer?: string;
  /** Long-lived connections (WebSocket, CONNECT tunnel, a closure on revocation): bytes each way after the upgrade, and how long it was open. */
  bytesIn?: number;
  bytesOut?: number;
  durationMs?: number;
}

export interface Audit {
  write(rec: AuditRecord): void;
  flush(): void;
}

/**
 * Lines are buffered up to `bufferBytes` and flushed at least every `flushMs`, so the request path
 * never waits for a write and a quiet enforcer's records still appear within `flushMs`.
 */
export function createAudit(file?: string, opts: { bufferBytes?: number; flushMs?: number } = {}): Audit {
  const dest = pino.destination({ dest: file ?? 1, sync: false, mkdir: true, minLength: opts.bufferBytes ?? 4096 });
  const timer = setInterval(() => dest.flush(), opts.flushMs ?? 200);
  timer.unref();
  const log: Logger = pino({ base: { log: "audit" }, timestamp: pino.stdTimeFunctions.isoTime, messageKey: "msg" }, dest);
  return {
    write: (rec) => log.info(rec),
    flush: () => {
      try {
        dest.flushSync();
      } catch {
        // not ready yet (nothing written): nothing to flush
      }
    },
  };
}

/** The path for the audit record: no query string, at most 512 characters. */
export function auditPath(rawPath: string): string {
  const q = rawPath.indexOf("?");
  const p = q >= 0 ? rawPath.slice(0, q) : rawPath;
  return p.length > 512 ? `${p.slice(0, 512)}…` : p;
}
