// One pino root for the whole process. JSON by default (for log pipelines);
// TENET_LOG_FORMAT=pretty gives a readable dev mode.
import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger };

export function createLogger(name: string, opts: { level?: string; pretty?: boolean; destination?: DestinationStream } = {}): Logger {
  const level = opts.level ?? process.env.TENET_LOG_LEVEL ?? "info";
  const pretty = opts.pretty ?? process.env.TENET_LOG_FORMAT === "pretty";
  const options = {
    name,
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Defence in depth: tokens and keys must never reach a log line.
    redact: { paths: ["token", "*.token", "authorization", "*.authorization", "privateKey", "*.privateKey"], censor: "[redacted]" },
    transport: pretty
      ? { target: "pino-pretty", options: { colorize: true, singleLine: true, translateTime: "HH:MM:ss.l", ignore: "pid,hostname" } }
      : undefined,
  };
  return opts.destination ? pino({ ...options, transport: undefined }, opts.destination) : pino(options);
}
