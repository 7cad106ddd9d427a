import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { ShimError, type Code } from "../../src/errdefs.js";
import { fromStatus, toStatus } from "../../src/ttrpc/status.js";

const TABLE: Array<[Code, number]> = [
  ["Canceled", 1],
  ["Unknown", 2],
  ["InvalidArgument", 3],
  ["DeadlineExceeded", 4],
  ["NotFound", 5],
  ["AlreadyExists", 6],
  ["ResourceExhausted", 8],
  ["FailedPrecondition", 9],
  ["Unimplemented", 12],
  ["Internal", 13],
  ["Unavailable", 14],
];

void suite("toStatus()", () => {
  void test("maps every ShimError code to its gRPC number", () => {
    for (const [code, n] of TABLE) assert.deepEqual(toStatus(new ShimError(code, `m ${code}`)), { code: n, message: `m ${code}` });
  });

  void test("uses the first ShimError in the cause chain", () => {
    const err = new Error("outer", { cause: new ShimError("NotFound", "inner") });
    assert.deepEqual(toStatus(err), { code: 5, message: "outer" });
  });

  void test("maps a plain Error to UNKNOWN with its message", () => {
    assert.deepEqual(toStatus(new TypeError("boom")), { code: 2, message: "boom" });
  });

  void test("maps a non-Error throwable to UNKNOWN with its text", () => {
    assert.deepEqual(toStatus("just a string"), { code: 2, message: "just a string" });
    assert.deepEqual(toStatus(undefined), { code: 2, message: "undefined" });
  });

  void test("maps abort and timeout errors to CANCELLED and DEADLINE_EXCEEDED", () => {
    assert.equal(toStatus(new DOMException("aborted", "AbortError")).code, 1);
    assert.equal(toStatus(new DOMException("timed out", "TimeoutError")).code, 4);
  });
});

void suite("fromStatus()", () => {
  void test("maps every gRPC number back to its code", () => {
    for (const [code, n] of TABLE) {
      const err = fromStatus(n, "msg");
      assert.ok(err instanceof ShimError);
      assert.equal(err.code, code);
      assert.equal(err.message, "msg");
    }
  });

  void test("maps numbers without a class to Unknown", () => {
    for (const n of [7, 10, 11, 15, 16, 99]) assert.equal(fromStatus(n, "x").code, "Unknown");
  });
});
