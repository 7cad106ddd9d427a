// src/ids.ts: containerd's identifier rule (pkg/identifiers), shared by the task and sandbox services.
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { ShimError } from "../src/errdefs.js";
import { idProblem, MAX_ID_LENGTH, validateId } from "../src/ids.js";

/** Ids containerd sends: ctr names, CRI's 64-hex ids, CRI exec ids, k8s-style names, 76 characters. */
const ACCEPTED = [
  "a", "Z9", "redis", "my-ctr_1.2", "0", "a.b.c", "a-b_c.d",
  "6b1f5e3f8a2c4d9e0f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e", // CRI container/sandbox id
  "a3f0c9e7b2d14e5f8a6b", // CRI exec id (random hex)
  "x".repeat(MAX_ID_LENGTH),
];

const REFUSED: [string, string][] = [
  ["", "must not be empty"],
  ["x".repeat(MAX_ID_LENGTH + 1), "longer than 76 characters"],
  ["a/b", "must match"],
  ["/etc", "must match"],
  ["..", "must match"],
  ["../x", "must match"],
  ["a..b", "must match"],
  [".a", "must match"],
  ["a.", "must match"],
  ["-a", "must match"],
  ["a--b", "must match"],
  ["a\0b", "must match"],
  ["a\nb", "must match"],
  ["a\tb", "must match"],
  ["a\x7fb", "must match"],
  ["a b", "must match"],
  ["é", "must match"],
  ["a:b", "must match"],
];

void suite("validateId", () => {
  void test("accepts what containerd's identifiers.Validate accepts", () => {
    for (const id of ACCEPTED) assert.equal(idProblem(id), undefined, id);
    for (const id of ACCEPTED) validateId(id, "container");
  });

  void test("refuses empty, too long, path-like, NUL and control characters with InvalidArgument", () => {
    for (const [id, why] of REFUSED) {
      assert.throws(() => validateId(id, "exec"), (err: unknown) => {
        assert.ok(err instanceof ShimError);
        assert.equal(err.code, "InvalidArgument", JSON.stringify(id));
        assert.ok(err.message.includes(why), `${JSON.stringify(id)}: ${err.message}`);
        assert.ok(err.message.startsWith("Cannot use exec id "), err.message);
        return true;
      });
    }
  });

  void test("quotes a hostile id with escapes and cuts it, so no control character reaches the message", () => {
    const err = (() => {
      try {
        validateId(`a\0\n\x1b[31m${"y".repeat(500)}`, "sandbox");
      } catch (e) {
        return e as Error;
      }
      throw new Error("not refused");
    })();
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(err.message, /[\x00-\x1f\x7f]/);
    assert.match(err.message, /"a\\u0000\\n\\u001b\[31my+\.\.\."/);
    assert.ok(err.message.length < 200, `${err.message.length} characters`);
  });
});
