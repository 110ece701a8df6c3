import { strict as assert } from "node:assert";
import { ImageRefError, parseImage, registryAllowed, repositoryPrefixes } from "../../common/images.ts";

const SHA = "sha256:" + "0123456789abcdef".repeat(4);

describe("image references", () => {
  const cases: [string, string, { registry: string; repository: string; tag?: string; digest?: string; full: string }][] = [
    ["a bare official image is docker.io/library with tag latest", "nginx", { registry: "docker.io", repository: "library/nginx", tag: "latest", full: "docker.io/library/nginx:latest" }],
    ["an organisation image on Docker Hub gets no library/ prefix", "jmalloc/echo-server", { registry: "docker.io", repository: "jmalloc/echo-server", tag: "latest", full: "docker.io/jmalloc/echo-server:latest" }],
    ["an explicit docker.io registry is kept", "docker.io/falcosecurity/falco:0.44.1", { registry: "docker.io", repository: "falcosecurity/falco", tag: "0.44.1", full: "docker.io/falcosecurity/falco:0.44.1" }],
    ["index.docker.io is Docker Hub's legacy name for docker.io", "index.docker.io/nginx:1.16", { registry: "docker.io", repository: "library/nginx", tag: "1.16", full: "docker.io/library/nginx:1.16" }],
    ["a first segment with a dot is a registry", "ghcr.io/acme/orders:1.0", { registry: "ghcr.io", repository: "acme/orders", tag: "1.0", full: "ghcr.io/acme/orders:1.0" }],
    ["a first segment with a port is a registry", "registry.example.com:5000/team/app:2", { registry: "registry.example.com:5000", repository: "team/app", tag: "2", full: "registry.example.com:5000/team/app:2" }],
    ["localhost is a registry even without a dot", "localhost/app", { registry: "localhost", repository: "app", tag: "latest", full: "localhost/app:latest" }],
    ["the registry is lowercased", "GHCR.io/acme/orders:1.0", { registry: "ghcr.io", repository: "acme/orders", tag: "1.0", full: "ghcr.io/acme/orders:1.0" }],
    ["a digest without a tag gets no default tag", `ghcr.io/acme/orders@${SHA}`, { registry: "ghcr.io", repository: "acme/orders", digest: SHA, full: `ghcr.io/acme/orders@${SHA}` }],
    ["a tag and a digest are both kept", `ghcr.io/a/b:1@${SHA}`, { registry: "ghcr.io", repository: "a/b", tag: "1", digest: SHA, full: `ghcr.io/a/b:1@${SHA}` }],
    ["a port is not mistaken for a tag", "localhost:5000/x", { registry: "localhost:5000", repository: "x", tag: "latest", full: "localhost:5000/x:latest" }],
  ];
  for (const [name, ref, want] of cases) {
    it(name, () => {
      const got = parseImage(ref);
      assert.deepEqual({ ...got }, { ...want, raw: ref });
    });
  }

  const garbage: [string, string, RegExp][] = [
    ["refuses an empty reference", "", /invalid image reference "": it is empty/],
    ["refuses a reference with spaces", "nginx latest", /"nginx latest": it contains whitespace/],
    ["refuses an uppercase repository", "ghcr.io/Acme/orders", /"ghcr.io\/Acme\/orders": repository "Acme\/orders" must be lowercase/],
    ["refuses a digest of the wrong length", "nginx@sha256:abc", /digest "sha256:abc" must be 64 lowercase hex characters/],
    ["refuses a digest without an algorithm", "nginx@abcdef", /digest "abcdef" is not of the form algorithm:hex/],
    ["refuses an empty tag", "nginx:", /tag "" is not valid/],
    ["refuses a double slash", "ghcr.io//x", /invalid path component ""/],
  ];
  for (const [name, ref, message] of garbage) {
    it(name, () => {
      assert.throws(() => parseImage(ref), (e: unknown) => e instanceof ImageRefError && message.test(e.message));
    });
  }
});

describe("allowed registries", () => {
  const cases: [string, string, string[], boolean][] = [
    ["a registry host allows every repository on it", "ghcr.io/acme/orders:1", ["ghcr.io"], true],
    ["a repository prefix allows repositories under it", "ghcr.io/acme/orders:1", ["ghcr.io/acme"], true],
    ["a repository prefix matches whole path segments, not substrings", "ghcr.io/acmecorp/x:1", ["ghcr.io/acme"], false],
    ["a registry host does not allow a longer host name", "ghcr.io.evil.com/acme/x:1", ["ghcr.io"], false],
    ["a bare image name is matched as docker.io/library", "nginx", ["docker.io/library"], true],
    ["docker.io/library does not allow other Docker Hub organisations", "bitnami/redis", ["docker.io/library"], false],
    ["a registry with a port only allows that port", "registry.example.com/team/app", ["registry.example.com:5000"], false],
    ["a registry with a port and a path allows under it", "registry.example.com:5000/team/app", ["registry.example.com:5000/team"], true],
    ["an empty list allows any registry", "quay.io/x/y", [], true],
    ["any matching entry of several allows", "quay.io/x/y", ["ghcr.io", "quay.io/x"], true],
  ];
  for (const [name, ref, allowed, want] of cases) {
    it(name, () => assert.equal(registryAllowed(parseImage(ref), allowed), want));
  }

  it("normalizes exemption image prefixes like image names", () => {
    assert.deepEqual(repositoryPrefixes("nginx"), ["docker.io/library/nginx"]);
    assert.deepEqual(repositoryPrefixes("acme/orders"), ["docker.io/acme/orders"]);
    assert.deepEqual(repositoryPrefixes("ghcr.io/acme/orders"), ["ghcr.io/acme/orders"]);
    assert.deepEqual(repositoryPrefixes("docker.io/nginx"), ["docker.io/nginx", "docker.io/library/nginx"]);
    assert.deepEqual(repositoryPrefixes("GHCR.io"), ["ghcr.io"]);
  });
});
