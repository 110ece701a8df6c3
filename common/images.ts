// Container image references, parsed and normalized with Docker's rules, so that the image a pod
// names, the image a scan report describes and the registries a rule allows compare as equals.

export interface ImageRef {
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
  /** registry/repository[:tag][@digest], normalized */
  full: string;
  /** as written in the pod */
  raw: string;
}

export class ImageRefError extends Error {
  override name = "ImageRefError";
}

export const DEFAULT_REGISTRY = "docker.io";
// Docker Hub's legacy name; Docker (and Trivy Operator's registry.server) still uses it.
const LEGACY_DEFAULT_REGISTRY = "index.docker.io";

// The grammar of github.com/distribution/reference (reference/regexp.go).
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;
const DIGEST_HEX: Record<string, { length: number; re: RegExp }> = {
  sha256: { length: 64, re: /^[a-f0-9]{64}$/ },
  sha384: { length: 96, re: /^[a-f0-9]{96}$/ },
  sha512: { length: 128, re: /^[a-f0-9]{128}$/ },
};
const OTHER_DIGEST_HEX = /^[a-fA-F0-9]{32,}$/;
const MAX_NAME_LENGTH = 255;

function fail(ref: string, why: string): never {
  throw new ImageRefError(`invalid image reference ${JSON.stringify(ref)}: ${why}`);
}

/** Docker's rule: the first path segment is a registry host when it has a '.', a ':', is "localhost" or has capitals. */
function looksLikeHost(segment: string): boolean {
  return segment.includes(".") || segment.includes(":") || segment === "localhost" || segment !== segment.toLowerCase();
}

function normalizeRegistry(host: string): string {
  const h = host.toLowerCase();
  return h === LEGACY_DEFAULT_REGISTRY ? DEFAULT_REGISTRY : h;
}

/**
 * Parses an image reference as a container runtime does: "nginx" is docker.io/library/nginx:latest
 * (the tag defaults to "latest" only when there is no digest); "ghcr.io/a/b:1@sha256:…" keeps both.
 */
export function parseImage(ref: string): ImageRef {
  if (typeof ref !== "string" || ref === "") fail(String(ref), "it is empty");
  if (/\s/.test(ref)) fail(ref, "it contains whitespace");

  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    const m = DIGEST.exec(digest);
    if (!m) fail(ref, `digest "${digest}" is not of the form algorithm:hex`);
    const known = DIGEST_HEX[m[1]];
    if (!(known ? known.re : OTHER_DIGEST_HEX).test(m[2])) {
      fail(ref, `digest "${digest}" must be ${known ? known.length : "at least 32"} lowercase hex characters after "${m[1]}:"`);
    }
  }

  // A tag is what follows the last ':' after the last '/' (a ':' before it belongs to a registry port).
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.indexOf(":", lastSlash + 1);
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) fail(ref, `tag "${tag}" is not valid (letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-')`);
  }

  if (rest === "") fail(ref, "the repository name is empty");
  let registry = DEFAULT_REGISTRY;
  let path = rest;
  const slash = rest.indexOf("/");
  if (slash >= 0 && looksLikeHost(rest.slice(0, slash))) {
    const host = rest.slice(0, slash);
    if (!DOMAIN.test(host)) fail(ref, `registry "${host}" is not a valid host[:port]`);
    registry = normalizeRegistry(host);
    path = rest.slice(slash + 1);
  }
  if (registry === DEFAULT_REGISTRY && !path.includes("/")) path = `library/${path}`;

  if (path !== path.toLowerCase()) fail(ref, `repository "${path}" must be lowercase`);
  for (const c of path.split("/")) {
    if (!COMPONENT.test(c)) fail(ref, `repository "${path}" has an invalid path component "${c}"`);
  }
  if (registry.length + 1 + path.length > MAX_NAME_LENGTH) fail(ref, `the name is longer than ${MAX_NAME_LENGTH} characters`);

  if (tag === undefined && digest === undefined) tag = "latest";
  const full = `${registry}/${path}${tag !== undefined ? `:${tag}` : ""}${digest !== undefined ? `@${digest}` : ""}`;
  const out: ImageRef = { registry, repository: path, full, raw: ref };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

/** "registry/repository", the name without tag or digest. */
export function repositoryOf(image: ImageRef): string {
  return `${image.registry}/${image.repository}`;
}

/** True when `name` equals `prefix` or continues it after a '/': whole path segments, not substrings. */
export function hasPathPrefix(name: string, prefix: string): boolean {
  if (prefix === "" || prefix === "/") return true;
  const p = prefix.endsWith("/") ? prefix.slice(0, -1) : prefix;
  return name === p || (name.startsWith(p) && name.charCodeAt(p.length) === 47 /* '/' */);
}

/** An allowedRegistries entry as written in the rule: host[:port][/path], host lowercased, Docker Hub's legacy name folded. */
export function normalizeRegistryEntry(entry: string): string {
  const slash = entry.indexOf("/");
  const host = slash < 0 ? entry : entry.slice(0, slash);
  return normalizeRegistry(host) + (slash < 0 ? "" : entry.slice(slash).replace(/\/+$/, ""));
}

/**
 * Whether the image comes from one of the allowed registries. Entries are registry hosts or
 * repository prefixes ("ghcr.io", "ghcr.io/acme", "docker.io/library"), matched on whole path
 * segments: "ghcr.io/acme" does not allow "ghcr.io/acmecorp/x". An empty list allows any registry
 * (the RuntimeRule's allowedRegistries promises that).
 */
export function registryAllowed(image: ImageRef, allowed: string[]): boolean {
  if (!allowed || allowed.length === 0) return true;
  const name = repositoryOf(image);
  for (const entry of allowed) {
    if (hasPathPrefix(name, normalizeRegistryEntry(entry))) return true;
  }
  return false;
}

/**
 * The repository prefixes an exemption's `images` entry stands for, normalized like image names:
 * "nginx" is docker.io/library/nginx, "acme/orders" is docker.io/acme/orders. "docker.io/nginx"
 * could mean the official image or the "nginx" organisation, so it stands for both.
 */
export function repositoryPrefixes(entry: string): string[] {
  const e = entry.replace(/\/+$/, "");
  const slash = e.indexOf("/");
  const first = slash < 0 ? e : e.slice(0, slash);
  if (slash < 0 && !looksLikeHost(first)) return [`${DEFAULT_REGISTRY}/library/${e.toLowerCase()}`];
  if (!looksLikeHost(first)) return [`${DEFAULT_REGISTRY}/${e}`];
  const registry = normalizeRegistry(first);
  const path = slash < 0 ? "" : e.slice(slash + 1);
  if (path === "") return [registry];
  if (registry === DEFAULT_REGISTRY && !path.includes("/") && path !== "library") {
    return [`${registry}/${path}`, `${registry}/library/${path}`];
  }
  return [`${registry}/${path}`];
}
