// Many containers started at once each report their own exit status.
import assert from "node:assert/strict";
import { test } from "node:test";
import { assertNoLeftovers, describe, perVersion, runArgs } from "../helpers/ctr.js";

const N = 20;

perVersion("concurrent ctr run", (get) => {
  void test(`${N} containers started concurrently all report the right exit code`, { timeout: 180_000 }, async () => {
    const c = get();
    const results = await Promise.all(Array.from({ length: N }, (_, i) =>
      c.ctr(runArgs(`par${i}`, ["sh", "-c", `echo out${i}; exit ${i}`]), { timeoutMs: 150_000 })));
    results.forEach((r, i) => {
      assert.equal(r.code, i, describe(c, `container par${i}`, r));
      assert.equal(r.stdout, `out${i}\n`, describe(c, `container par${i}`, r));
    });
    for (let i = 0; i < N; i++) await assertNoLeftovers(c, `par${i}`);
  });
});
