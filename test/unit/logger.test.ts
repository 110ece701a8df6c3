import { strict as assert } from "node:assert";
import { createLogger } from "../../common/logger.ts";

describe("logger", () => {
  it("writes JSON lines with stable keys and never a token, authorization header or private key", () => {
    const lines: string[] = [];
    const log = createLogger("t", { level: "info", destination: { write: (s: string) => void lines.push(s) } });
    log.info({ key: "demo/orders", token: "eyJhbGciOi.secret", req: { authorization: "Bearer abc" }, privateKey: "-----BEGIN" }, "hello");
    const rec = JSON.parse(lines[0]);
    assert.equal(rec.msg, "hello");
    assert.equal(rec.name, "t");
    assert.equal(rec.key, "demo/orders", "work-queue keys are not secrets and stay readable");
    assert.equal(rec.token, "[redacted]");
    assert.equal(rec.req.authorization, "[redacted]");
    assert.equal(rec.privateKey, "[redacted]");
    assert.ok(!lines[0].includes("eyJhbGciOi") && !lines[0].includes("Bearer abc"));
  });
});
