// Keeps ServiceIdentity status.certificatesIssued / lastIssued current. Any replica can sign,
// so counts are batched per identity and added with a resourceVersion-guarded merge patch:
// two replicas never overwrite each other's increments.
import type { Logger } from "../../common/logger.ts";
import { isNotFound, retryOnConflict, resourcePath, Resources, type Kube } from "../../common/kube.ts";

type CountedIdentity = { metadata: { resourceVersion?: string }; status?: { certificatesIssued?: number } };

export class IssuanceStatus {
  private pending = new Map<string, { count: number; last: string }>();
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;

  constructor(
    private readonly kube: Kube,
    private readonly log: Logger,
    /** The informer's copy, tried first: one PATCH per flush instead of a GET and a PATCH. */
    private readonly cached: (namespace: string, name: string) => CountedIdentity | undefined = () => undefined,
    private readonly intervalMs = 1000,
  ) {}

  record(namespace: string, name: string, at: Date) {
    const key = `${namespace}/${name}`;
    const p = this.pending.get(key) ?? { count: 0, last: at.toISOString() };
    p.count++;
    p.last = at.toISOString().replace(/\.\d{3}Z$/, "Z");
    this.pending.set(key, p);
    this.timer ??= setTimeout(() => void this.flush(), this.intervalMs);
  }

  async flush(): Promise<void> {
    this.timer = undefined;
    if (this.flushing) await this.flushing;
    const batch = this.pending;
    this.pending = new Map();
    this.flushing = (async () => {
      for (const [key, { count, last }] of batch) {
        const [namespace, name] = key.split("/");
        try {
          await this.add(namespace, name, count, last);
        } catch (err) {
          this.log.warn({ serviceIdentity: key, err: String((err as Error).message ?? err) }, "could not update issuance status; will retry");
          const p = this.pending.get(key) ?? { count: 0, last };
          p.count += count;
          this.pending.set(key, p);
          this.timer ??= setTimeout(() => void this.flush(), this.intervalMs * 5);
        }
      }
    })();
    await this.flushing;
    this.flushing = undefined;
  }

  private async add(namespace: string, name: string, count: number, last: string) {
    const path = resourcePath(Resources.serviceIdentities, namespace, name);
    await retryOnConflict(async (attempt) => {
      // The cached copy may lag our last write: its resourceVersion then conflicts and we read.
      let si: CountedIdentity | undefined = attempt === 0 ? this.cached(namespace, name) : undefined;
      try {
        si ??= (await this.kube.get(path)) as CountedIdentity;
      } catch (err) {
        if (isNotFound(err)) return;
        throw err;
      }
      const issued = (si.status?.certificatesIssued ?? 0) + count;
      await this.kube.patch(`${path}/status`, "merge", {
        metadata: { resourceVersion: si.metadata.resourceVersion },
        status: { certificatesIssued: issued, lastIssued: last },
      });
    }, "too many concurrent status updates");
  }

  async stop() {
    if (this.timer) clearTimeout(this.timer);
    await this.flush();
  }
}
