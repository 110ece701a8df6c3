// The audit log: one JSON line per attempt (inbound and outbound), in pino's line format on its
// own destination (a file or stdout), separate from the operational log. Never a token, an
// Authorization header or a query string (which may carry credentials).
import { mkdirSync, openSync, writeSync } from "node:fs";
import path from "node:path";

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
 * Records are serialized here (pino's line format: level, time, log: "audit", then the record's
 * fields) and batched: one write per `bufferBytes` of lines or per `flushMs`, never per request.
 * Writes are synchronous so nothing is in flight when the process exits (flush() and an exit
 * hook write what is left); a pipe that is full (EAGAIN) keeps the bytes for the next flush.
 */
const BACKLOG_BYTES = 8 * 1024 * 1024;
const pause = new Int32Array(new SharedArrayBuffer(4));

export function createAudit(file?: string, opts: { bufferBytes?: number; flushMs?: number } = {}): Audit {
  let fd = 1;
  if (file) {
    mkdirSync(path.dirname(file), { recursive: true });
    fd = openSync(file, "a");
  }
  const max = opts.bufferBytes ?? 64 * 1024;
  let lines = "";
  let rest: Buffer | undefined; // bytes a short or refused write left behind
  let lastMs = 0;
  let prefix = "";
  // drain: write everything, waiting for the reader if need be (flush() and at exit).
  const flush = (drain = false) => {
    if (lines) {
      const b = Buffer.from(lines);
      lines = "";
      rest = rest ? Buffer.concat([rest, b]) : b;
    }
    while (rest) {
      const pending: Buffer = rest;
      try {
        const n = writeSync(fd, pending);
        rest = n >= pending.length ? undefined : pending.subarray(n);
      } catch (err) {
        if ((err as { code?: string }).code !== "EAGAIN") throw err;
        // A reader that stays behind: keep a bounded backlog, beyond it wait for the reader
        // (as pino's synchronous mode does) rather than grow without end or drop records.
        if (!drain && pending.length < BACKLOG_BYTES) return;
        Atomics.wait(pause, 0, 0, 1);
      }
    }
  };
  const timer = setInterval(() => flush(), opts.flushMs ?? 200);
  timer.unref();
  process.once("exit", () => flush(true));
  return {
    write: (rec) => {
      const now = Date.now();
      if (now !== lastMs) {
        lastMs = now;
        prefix = `{"level":30,"time":"${new Date(now).toISOString()}","log":"audit",`;
      }
      lines += prefix + JSON.stringify(rec).slice(1) + "\n";
      if (lines.length >= max) flush();
    },
    flush: () => flush(true),
  };
}

/** The path for the audit record: no query string, at most 512 characters. */
export function auditPath(rawPath: string): string {
  const q = rawPath.indexOf("?");
  const p = q >= 0 ? rawPath.slice(0, q) : rawPath;
  return p.length > 512 ? `${p.slice(0, 512)}…` : p;
}
