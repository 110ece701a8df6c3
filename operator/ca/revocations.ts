// The revocation list: serial numbers of certificates that peers must refuse (quarantined
// workloads). Stored in a ConfigMap (tenet-system/tenet-revocations) so it survives
// restarts and can be mounted; served with an ETag so enforcers poll it cheaply. Entries
// leave the list once the certificate has expired anyway.
import type { Logger } from "../../common/logger.ts";
import { isAlreadyExists, isNotFound, RETRY, retryOnConflict, resourcePath, Resources, type Kube } from "../../common/kube.ts";
import { Informer } from "../runtime/informer.ts";
import type { KubeObject } from "../../common/objects.ts";
import { PART_OF_TENET, REVOCATIONS_CONFIGMAP } from "../../common/names.ts";
import { strongETag } from "../../common/http.ts";

export interface RevocationEntry {
  serial: string;
  /** When the certificate expires; the entry is pruned after this. */
  notAfter: string;
  reason: string;
  revokedAt: string;
  subject?: string;
}

export interface RevocationDocument {
  entries: RevocationEntry[];
}

const KEY = "revocations.json";

interface ConfigMapObject extends KubeObject {
  data?: Record<string, string>;
}

export class RevocationList {
  private doc: RevocationDocument = { entries: [] };
  private body = JSON.stringify(this.doc);
  private tag = etagOf(this.body);
  private serials = new Set<string>();
  private informer?: Informer<ConfigMapObject>;

  constructor(
    private readonly kube: Kube,
    private readonly log: Logger,
    private readonly namespace: string,
    private readonly name = REVOCATIONS_CONFIGMAP,
  ) {}

  get etag() {
    return this.tag;
  }
  get json() {
    return this.body;
  }
  get size() {
    return this.doc.entries.length;
  }
  isRevoked(serial: string) {
    return this.serials.has(serial.toLowerCase());
  }

  private get path() {
    return resourcePath(Resources.configMaps, this.namespace, this.name);
  }

  async start() {
    try {
      await this.kube.create(resourcePath(Resources.configMaps, this.namespace), this.configMap({ entries: [] }));
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
    this.informer = new Informer<ConfigMapObject>(this.kube, this.log, {
      name: "revocations",
      resource: Resources.configMaps,
      namespace: this.namespace,
      fieldSelector: `metadata.name=${this.name}`,
    });
    this.informer.onChange((type, cm) => type !== "delete" && this.accept(cm));
    await this.informer.start();
  }

  stop() {
    this.informer?.stop();
  }

  private configMap(doc: RevocationDocument, base?: ConfigMapObject) {
    return {
      ...(base ?? {}),
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { ...(base?.metadata ?? { name: this.name, namespace: this.namespace }), labels: { ...PART_OF_TENET } },
      data: { [KEY]: JSON.stringify(doc, null, 1) },
    };
  }

  private accept(cm: ConfigMapObject) {
    try {
      const doc = parseDocument(cm.data?.[KEY] ?? '{"entries":[]}');
      this.doc = doc;
      this.body = JSON.stringify(doc);
      this.tag = etagOf(this.body);
      this.serials = new Set(doc.entries.map((e) => e.serial.toLowerCase()));
    } catch (err) {
      // Keep enforcing the last good list rather than forgetting revocations.
      this.log.error({ configMap: `${this.namespace}/${this.name}`, err: (err as Error).message }, "revocation list is malformed; keeping the last good version");
    }
  }

  /** Read-modify-write with the resourceVersion; retried on conflict. */
  async update(change: (doc: RevocationDocument) => RevocationDocument | undefined): Promise<boolean> {
    return retryOnConflict(async () => {
      let cm: ConfigMapObject;
      try {
        cm = await this.kube.get(this.path);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await this.start(); // recreates it
        return RETRY;
      }
      const next = change(parseDocument(cm.data?.[KEY] ?? '{"entries":[]}'));
      if (!next) return false;
      this.accept(await this.kube.replace(this.path, this.configMap(next, cm)));
      return true;
    }, "revocation list: too many concurrent updates");
  }

  revoke(entries: Omit<RevocationEntry, "revokedAt">[], now = new Date()) {
    return this.update((doc) => {
      const have = new Set(doc.entries.map((e) => e.serial.toLowerCase()));
      const add = entries.filter((e) => !have.has(e.serial.toLowerCase()));
      if (!add.length) return undefined;
      return { entries: [...doc.entries, ...add.map((e) => ({ ...e, serial: e.serial.toLowerCase(), revokedAt: now.toISOString() }))] };
    });
  }

  /** Leader housekeeping: drop entries whose certificates have expired. */
  prune(now = new Date()) {
    return this.update((doc) => {
      const keep = doc.entries.filter((e) => Date.parse(e.notAfter) > now.getTime());
      return keep.length === doc.entries.length ? undefined : { entries: keep };
    });
  }
}

function parseDocument(text: string): RevocationDocument {
  const doc = JSON.parse(text);
  if (!doc || !Array.isArray(doc.entries)) throw new Error('expected {"entries": [...]}');
  for (const [i, e] of doc.entries.entries()) {
    if (typeof e?.serial !== "string" || !/^[0-9a-fA-F]{1,64}$/.test(e.serial)) throw new Error(`entries[${i}].serial must be a hex serial number`);
    if (typeof e.notAfter !== "string" || Number.isNaN(Date.parse(e.notAfter))) throw new Error(`entries[${i}].notAfter must be an RFC 3339 time`);
  }
  return doc;
}

const etagOf = strongETag;
