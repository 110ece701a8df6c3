// TokenReview results are reused for the token's lifetime: an enforcer's policy polls do not each
// cost a TokenReview; the cache never holds a token, and stays bounded.
import { strict as assert } from "node:assert";
import { KubeError } from "../../common/kube.ts";
import { authenticatePod } from "../../operator/ca/issuer.ts";
import { TokenReviewCache } from "../../operator/ca/token-reviews.ts";

const jwt = (claims: Record<string, unknown>) =>
  [Buffer.from(JSON.stringify({ alg: "RS256" })).toString("base64url"), Buffer.from(JSON.stringify(claims)).toString("base64url"), "c2lnbmF0dXJl"].join(".");

function fakes() {
  const reviews: string[] = [];
  const pod = { metadata: { name: "orders-0", namespace: "shop", uid: "uid-1", labels: {} }, spec: { serviceAccountName: "orders", containers: [] } };
  const kube: any = {
    async create(path: string, body: any) {
      assert.match(path, /tokenreviews$/);
      reviews.push(body.spec.token);
      if (body.spec.token.startsWith("bad")) return { status: { authenticated: false, error: "invalid bearer token" } };
      return {
        status: {
          authenticated: true,
          audiences: ["tenet"],
          user: { username: "system:serviceaccount:shop:orders", extra: { "authentication.kubernetes.io/pod-name": ["orders-0"], "authentication.kubernetes.io/pod-uid": ["uid-1"] } },
        },
      };
    },
  };
  const pods: any = { get: (key: string) => (key === "shop/orders-0" ? pod : undefined) };
  return { kube, pods, reviews };
}

describe("TokenReview cache", () => {
  it("reviews a token once for its lifetime, however often the enforcer polls", async () => {
    const { kube, pods, reviews } = fakes();
    const token = jwt({ exp: Math.floor(Date.now() / 1000) + 3600, sub: "system:serviceaccount:shop:orders", n: Math.random() });
    for (let i = 0; i < 20; i++) assert.equal((await authenticatePod(token, { kube, pods })).metadata.name, "orders-0");
    assert.equal(reviews.length, 1, "one TokenReview for 20 polls");
    const other = jwt({ exp: Math.floor(Date.now() / 1000) + 3600, n: Math.random() });
    await authenticatePod(other, { kube, pods });
    assert.equal(reviews.length, 2, "another token is reviewed");
  });

  it("does not cache refusals, expired tokens or tokens without exp", async () => {
    const { kube, pods, reviews } = fakes();
    const bad = "bad" + jwt({ exp: Math.floor(Date.now() / 1000) + 3600, n: Math.random() });
    for (let i = 0; i < 3; i++) await assert.rejects(authenticatePod(bad, { kube, pods }));
    assert.equal(reviews.length, 3);
    const noExp = jwt({ n: Math.random() });
    for (let i = 0; i < 3; i++) await authenticatePod(noExp, { kube, pods });
    assert.equal(reviews.length, 6);
  });

  it("still refuses a cached token once its pod is gone", async () => {
    const { kube, pods, reviews } = fakes();
    const token = jwt({ exp: Math.floor(Date.now() / 1000) + 3600, n: Math.random() });
    await authenticatePod(token, { kube, pods });
    const gone: any = { get: () => undefined };
    kube.get = async () => Promise.reject(new KubeError(404, "NotFound", "not found"));
    await assert.rejects(authenticatePod(token, { kube, pods: gone }), (e: any) => e.reason === "PodNotFound");
    assert.equal(reviews.length, 1);
  });

  it("keys entries by a hash of the token, expires them with the token, and stays bounded (LRU)", () => {
    let now = 1_000_000_000_000;
    const cache = new TokenReviewCache<string>(100, () => now);
    const tokens = Array.from({ length: 250 }, (_, i) => jwt({ exp: now / 1000 + 60, i }));
    tokens.forEach((t, i) => cache.set(t, `v${i}`));
    assert.equal(cache.size, 100);
    assert.equal(cache.get(tokens[0]), undefined, "the oldest were evicted");
    assert.equal(cache.get(tokens[249]), "v249");
    for (const k of cache.keys()) assert.ok(!tokens.includes(k) && !tokens.some((t) => t.includes(k)), "no token in the cache");
    now += 61_000;
    assert.equal(cache.get(tokens[249]), undefined, "expired with the token");
  });
});
