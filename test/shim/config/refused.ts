// Shared by the config tests: a call that must fail with InvalidArgument and exactly `message`.
import assert from "node:assert/strict";

export function refused(fn: () => unknown, message: string): void {
  assert.throws(fn, (err: Error & { code?: string }) => {
    assert.equal(err.code, "InvalidArgument", err.message);
    assert.equal(err.message, message);
    return true;
  });
}
