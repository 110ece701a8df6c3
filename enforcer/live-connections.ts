// The destination's open connections from meshed callers, by the caller's certificate: HTTP/1.1
// keep-alive connections, HTTP/2 sessions, opaque TCP tunnels and upgraded WebSockets. A request
// or stream is checked against the revocation list when it starts, but a tunnel or a WebSocket
// never starts another one, and an idle keep-alive connection waits for the next: so when the
// revocation list changes (or, on the trust refresh interval, a certificate expires), every
// connection whose caller is now revoked or expired is closed and the closure audited.
// The registry also bounds them: a caller (one certificate) and the enforcer as a whole hold at
// most so many, so one meshed peer cannot exhaust the destination's sockets and memory.
import type { Audit } from "./audit.ts";
import type { Metrics } from "./metrics.ts";

export interface LiveConnection {
  /** The caller's certificate serial and expiry, from the verified peer certificate. */
  serial: string;
  notAfterMs: number;
  caller?: string;
  destination: string;
  protocol: string;
  openedAt: number;
  /** How to close it: destroy the socket, or a GOAWAY for an HTTP/2 session. */
  close: () => void;
}

export interface ConnectionLimits {
  /** Open connections one caller certificate may hold (TENET_MAX_CONNECTIONS_PER_CALLER). */
  perCaller: number;
  /** Open connections from meshed callers in all (TENET_MAX_INBOUND_CONNECTIONS). */
  total: number;
}

export class LiveConnections {
  private readonly open = new Map<object, LiveConnection>();
  private readonly bySerial = new Map<string, number>();

  constructor(
    private readonly audit: Audit,
    private readonly metrics: Metrics,
    private readonly limits: ConnectionLimits = { perCaller: 1024, total: 8192 },
  ) {}

  /** Why one more connection from `serial` is refused, or undefined when it is within the limits. */
  overLimit(serial: string): string | undefined {
    if (this.open.size >= this.limits.total) return `this enforcer already holds its maximum of ${this.limits.total} open connections (TENET_MAX_INBOUND_CONNECTIONS)`;
    if ((this.bySerial.get(serial) ?? 0) >= this.limits.perCaller) return `this caller's certificate already holds its maximum of ${this.limits.perCaller} open connections (TENET_MAX_CONNECTIONS_PER_CALLER)`;
    return undefined;
  }

  get size() {
    return this.open.size;
  }

  /** Track `socket` until it closes. */
  add(socket: { once(ev: "close", fn: () => void): unknown }, c: Omit<LiveConnection, "openedAt">) {
    this.open.set(socket, { ...c, openedAt: performance.now() });
    this.bySerial.set(c.serial, (this.bySerial.get(c.serial) ?? 0) + 1);
    socket.once("close", () => this.forget(socket));
  }

  private forget(socket: object) {
    const c = this.open.get(socket);
    if (!c) return;
    this.open.delete(socket);
    const n = (this.bySerial.get(c.serial) ?? 1) - 1;
    if (n > 0) this.bySerial.set(c.serial, n);
    else this.bySerial.delete(c.serial);
  }

  /** What the connection became (an HTTP/2 session, a WebSocket) and how to close it now. */
  update(socket: object, patch: Partial<Pick<LiveConnection, "protocol" | "close" | "destination">>) {
    const c = this.open.get(socket);
    if (c) Object.assign(c, patch);
  }

  /** Close every connection whose caller is revoked or whose certificate has expired; returns how many. */
  sweep(isRevoked: (serial: string) => boolean, now = Date.now()): number {
    let n = 0;
    for (const [socket, c] of this.open) {
      const reason = c.serial && isRevoked(c.serial) ? "Revoked" : c.notAfterMs < now ? "CertificateExpired" : undefined;
      if (!reason) continue;
      this.forget(socket);
      n++;
      this.audit.write({
        direction: "inbound",
        destination: c.destination,
        caller: c.caller,
        decision: "deny",
        reason,
        status: 0,
        protocol: c.protocol,
        detail: reason === "Revoked" ? "open connection closed: the caller's certificate was revoked" : "open connection closed: the caller's certificate expired",
        latencyMs: 0,
        durationMs: Math.round(performance.now() - c.openedAt),
      });
      this.metrics.count("inbound", "deny", reason);
      try {
        c.close();
      } catch {
        // already gone
      }
    }
    return n;
  }
}
