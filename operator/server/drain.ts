// An answer the caller can read. When a server refuses a body (413) it has not read, closing the
// connection with the rest of the body unread makes the kernel reset it, and a client that writes
// its whole request before reading (the API server's, under load) sees "connection reset" instead
// of the 413. So the rest is read and discarded first — bounded in bytes and time, after which the
// connection is closed regardless (a client sending more than that may still see a reset).
import type { IncomingMessage } from "node:http";

export const DRAIN_MAX_BYTES = 16 * 1024 * 1024;
export const DRAIN_MAX_MS = 5_000;

/** Resolves once the request body has been read to its end, or after maxBytes / maxMs. */
export function drainRequest(req: IncomingMessage, maxBytes = DRAIN_MAX_BYTES, maxMs = DRAIN_MAX_MS): Promise<void> {
  if (req.readableEnded || req.destroyed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    let read = 0;
    const done = () => {
      clearTimeout(timer);
      req.off("data", onData);
      req.off("end", done);
      req.off("error", done);
      req.off("close", done);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      read += chunk.length;
      if (read > maxBytes) done();
    };
    const timer = setTimeout(done, maxMs);
    timer.unref?.();
    req.on("data", onData);
    req.once("end", done);
    req.once("error", done);
    req.once("close", done);
    req.resume();
  });
}
