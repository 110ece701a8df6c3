// The workload's PolicyDocument: fetched from the operator (GET /v1/policy, Bearer token, ETag)
// or read from a file in static mode, and compiled once per version by policy/authz.ts. Until a
// document has been compiled every request is refused (fail closed).
import { readFile } from "node:fs/promises";
import type { Logger } from "../common/logger.ts";
import type { AuthzRequest, Decision, MeshDocument, PolicyDocument } from "../policy/authz-contract.ts";
import { compilePolicy } from "../policy/authz.ts";
import { operatorError, type OperatorClient } from "./operator-client.ts";

export interface Authorizer {
  authorize(req: AuthzRequest): Promise<Decision>;
}
export type CompilePolicy = (doc: PolicyDocument) => Authorizer;

export function unavailable(reason: string, message: string): Decision {
  return { forward: false, decision: "deny", status: 503, mode: "enforce", reason, message };
}

export class PolicySource {
  private authorizer?: Authorizer;
  private doc?: PolicyDocument;
  private etag?: string;
  private readonly compile: CompilePolicy;
  private problem: Decision = unavailable("PolicyUnavailable", "the enforcer has no policy yet");
  private meshDoc?: MeshDocument;
  private readonly meshListeners: ((m: MeshDocument) => void)[] = [];

  constructor(
    private readonly opts: { url?: string; file?: string },
    private readonly client: OperatorClient | undefined,
    private readonly log: Logger,
    compile: CompilePolicy = compilePolicy,
  ) {
    this.compile = compile;
  }

  get version() {
    return this.doc?.version;
  }

  get ready() {
    return this.authorizer !== undefined;
  }

  /** The mesh part of the last document (destinations, inbound mode, egress); undefined until one came. */
  get mesh(): MeshDocument | undefined {
    return this.meshDoc;
  }

  onMeshChange(cb: (m: MeshDocument) => void) {
    this.meshListeners.push(cb);
  }

  private setMesh(m: MeshDocument | undefined) {
    if (!m || typeof m !== "object" || typeof m.version !== "string" || m.version === this.meshDoc?.version) return;
    this.meshDoc = { ...m, services: m.services ?? {}, pods: m.pods ?? {}, ids: m.ids ?? [] };
    this.log.info({ meshVersion: m.version, inbound: m.inbound, egress: m.egress, services: Object.keys(this.meshDoc.services).length, pods: Object.keys(this.meshDoc.pods).length }, "mesh destinations updated");
    for (const l of this.meshListeners) l(this.meshDoc);
  }

  /** The compiled policy, or a fixed refusal saying why there is none. */
  current(): Authorizer | Decision {
    return this.authorizer ?? this.problem;
  }

  async refresh(): Promise<void> {
    try {
      const doc = await this.fetch();
      if (doc) this.doc = doc;
      if (!this.doc) return;
      if (doc || !this.authorizer) {
        const started = performance.now();
        this.authorizer = this.compile(this.doc);
        this.log.info({ version: this.doc.version, policies: this.doc.policies.map((p) => `${p.namespace}/${p.name}`), compileMs: +(performance.now() - started).toFixed(2) }, "policy compiled");
      }
    } catch (err) {
      // A document that does not compile: keep the last good one, or refuse if there is none.
      if (!this.authorizer) this.problem = unavailable("PolicyInvalid", "the enforcer's policy could not be loaded");
      this.log.error({ err: (err as Error).message, version: this.doc?.version }, this.authorizer ? "policy refresh failed; keeping the last good version" : "no usable policy: refusing every request");
    }
  }

  /** A new document, or undefined when it has not changed. */
  private async fetch(): Promise<PolicyDocument | undefined> {
    let text: string;
    if (this.opts.file) {
      text = await readFile(this.opts.file, "utf8");
    } else if (this.opts.url && this.client) {
      const res = await this.client.get(this.opts.url, { etag: this.etag, auth: true });
      if (res.status === 304) return undefined;
      if (res.status !== 200) throw operatorError(`GET ${this.opts.url}`, res);
      this.etag = res.etag;
      text = res.body;
    } else {
      return undefined;
    }
    const doc = JSON.parse(text) as PolicyDocument;
    if (!doc || typeof doc.version !== "string" || !Array.isArray(doc.policies)) throw new Error('the policy document must be {"version": "...", "policies": [...]}');
    this.setMesh(doc.mesh);
    return doc.version === this.doc?.version && this.authorizer ? undefined : doc;
  }
}
