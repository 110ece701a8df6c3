// The CA lives in one Secret (tenet-system/tenet-ca). Every replica reads it (watch + periodic
// re-read) and signs with its active CA; only the leader changes it (rotation, pruning).
// It is created once, when it does not exist, and never regenerated while it exists: a
// malformed Secret stops signing with a clear error and an Event until a person repairs it.
import type { Logger } from "../../common/logger.ts";
import { isAlreadyExists, isNotFound, resourcePath, Resources, type Kube } from "../../common/kube.ts";
import type { EventRecorder } from "../runtime/events.ts";
import { Informer } from "../runtime/informer.ts";
import type { KubeObject } from "../../common/objects.ts";
import { COMPONENT_LABEL, PART_OF_TENET, ROTATE_ANNOTATION } from "../../common/names.ts";
import { loadAuthorities, planAuthorities, type CAPolicy, type CAState, type LoadedAuthorities } from "./authorities.ts";

const STATE_KEY = "state.json";

interface SecretObject extends KubeObject {
  apiVersion?: string;
  kind?: string;
  data?: Record<string, string>;
}

export interface CAStoreOptions {
  namespace: string;
  secretName: string;
  policy: CAPolicy;
  rereadMs?: number;
}

export class CAStore {
  private loaded?: LoadedAuthorities;
  private loadError?: string;
  private secret?: SecretObject;
  private informer?: Informer<SecretObject>;
  private rereadTimer?: NodeJS.Timeout;
  private readonly listeners: ((a: LoadedAuthorities) => void)[] = [];
  private readonly secretListeners: (() => void)[] = [];

  constructor(
    private readonly kube: Kube,
    private readonly log: Logger,
    private readonly opts: CAStoreOptions,
    private readonly events?: EventRecorder,
  ) {}

  /** The CA set to sign with, or a readable reason why there is none. */
  get authorities(): LoadedAuthorities | undefined {
    return this.loaded;
  }
  get error(): string | undefined {
    return this.loadError;
  }

  /** Called when the CA set (and so the trust bundle) changes. */
  onChange(fn: (a: LoadedAuthorities) => void) {
    this.listeners.push(fn);
  }

  /** Called on any change to the Secret (e.g. a rotation request annotation). */
  onSecretChange(fn: () => void) {
    this.secretListeners.push(fn);
  }

  private get path() {
    return resourcePath(Resources.secrets, this.opts.namespace, this.opts.secretName);
  }

  private get ref() {
    return `Secret ${this.opts.namespace}/${this.opts.secretName}`;
  }

  /** Creates the Secret if (and only if) it does not exist, then keeps the in-memory CA current. */
  async start(): Promise<void> {
    let secret: SecretObject | undefined;
    try {
      secret = await this.kube.get(this.path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (!secret) secret = await this.createSecret();
    this.accept(secret);
    this.informer = new Informer<SecretObject>(this.kube, this.log, {
      name: "ca-secret",
      resource: Resources.secrets,
      namespace: this.opts.namespace,
      fieldSelector: `metadata.name=${this.opts.secretName}`,
    });
    this.informer.onChange((type, obj) => {
      if (type === "delete") {
        this.log.error({ secret: this.ref }, "the CA Secret was deleted; signing continues with the CA in memory until it is restored or this replica restarts");
      } else {
        this.accept(obj);
      }
    });
    await this.informer.start();
    // Watches can miss things in odd network conditions: re-read on a timer as well.
    this.rereadTimer = setInterval(() => {
      this.kube.get(this.path).then((s) => this.accept(s), (err) => this.log.debug({ err: String(err) }, "periodic CA re-read failed"));
    }, this.opts.rereadMs ?? 60_000);
    this.rereadTimer.unref();
  }

  stop() {
    this.informer?.stop();
    if (this.rereadTimer) clearInterval(this.rereadTimer);
  }

  private async createSecret(): Promise<SecretObject> {
    const { state, notes } = planAuthorities(undefined, new Date(), this.opts.policy);
    try {
      const created = await this.kube.create(resourcePath(Resources.secrets, this.opts.namespace), this.secretBody(state));
      this.log.info({ secret: this.ref, notes }, "created the CA");
      return created;
    } catch (err) {
      // Another replica created it first: use theirs.
      if (isAlreadyExists(err)) return this.kube.get(this.path);
      throw err;
    }
  }

  private secretBody(state: CAState, base?: SecretObject): SecretObject {
    return {
      ...(base ?? {}),
      apiVersion: "v1",
      kind: "Secret",
      metadata: {
        ...(base?.metadata ?? { name: this.opts.secretName, namespace: this.opts.namespace }),
        labels: { ...(base?.metadata.labels ?? {}), ...PART_OF_TENET, [COMPONENT_LABEL]: "ca" },
      },
      data: { ...(base?.data ?? {}), [STATE_KEY]: Buffer.from(JSON.stringify(state)).toString("base64") },
    } as SecretObject;
  }

  private accept(secret: SecretObject) {
    if (this.secret?.metadata.resourceVersion === secret.metadata.resourceVersion && (this.loaded || this.loadError)) return;
    this.secret = secret;
    for (const fn of this.secretListeners) fn();
    try {
      const loaded = loadAuthorities(decodeState(secret));
      const changed = loaded.bundlePem !== this.loaded?.bundlePem;
      this.loaded = loaded;
      if (this.loadError) this.log.info({ secret: this.ref }, "the CA Secret is valid again; signing resumes");
      this.loadError = undefined;
      if (changed) {
        this.log.info({ active: loaded.active.serial, bundle: loaded.all.map((a) => `${a.ca.serial}:${a.status}`) }, "CA loaded");
        for (const fn of this.listeners) fn(loaded);
      }
    } catch (err) {
      const message = `${this.ref} is unusable: ${(err as Error).message}. Tenet will not replace it (that would break every workload's trust); restore it from a backup or delete it to let Tenet create a new CA`;
      if (message !== this.loadError) {
        this.log.error({ secret: this.ref }, message);
        void this.events?.emit({ apiVersion: "v1", kind: "Secret", metadata: secret.metadata as any }, "Warning", "CAInvalid", message);
      }
      this.loadError = message;
      this.loaded = undefined;
    }
  }

  /**
   * Leader only: applies the rotation policy and writes the Secret if it changed, with its
   * resourceVersion, so two writers can never both win. Returns the notes for Events.
   */
  async maintain(now = new Date()): Promise<{ notes: { reason: string; message: string }[]; state?: CAState }> {
    const secret: SecretObject = await this.kube.get(this.path);
    let current: CAState;
    try {
      current = decodeState(secret);
      loadAuthorities(current);
    } catch {
      this.accept(secret);
      return { notes: [] }; // never rewrite a Secret we cannot read
    }
    const rotation = secret.metadata.annotations?.[ROTATE_ANNOTATION];
    const { state, changed, notes } = planAuthorities(current, now, this.opts.policy, rotation);
    if (!changed) return { notes: [], state };
    const updated = await this.kube.replace(this.path, this.secretBody(state, secret));
    this.accept(updated);
    for (const n of notes) {
      this.log.info({ secret: this.ref, reason: n.reason }, n.message);
      void this.events?.emit({ apiVersion: "v1", kind: "Secret", metadata: updated.metadata }, "Normal", n.reason, n.message);
    }
    return { notes, state };
  }
}

function decodeState(secret: SecretObject): CAState {
  const raw = secret.data?.[STATE_KEY];
  if (!raw) throw new Error(`it has no "${STATE_KEY}" key`);
  try {
    return JSON.parse(Buffer.from(raw, "base64").toString("utf8"));
  } catch {
    throw new Error(`"${STATE_KEY}" is not valid JSON`);
  }
}
