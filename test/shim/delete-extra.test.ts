import assert from "node:assert/strict";
import { test } from "node:test";
import { containerd } from "../../src/gen/bootstrap.js";
import { deleteResponse } from "../../src/shim/delete.js";

void test("the hand-encoded DeleteResponse decodes with the generated code", () => {
  const cases: [number, Date][] = [
    [0, new Date(0)], [1, new Date(1_000)], [4242, new Date("2026-11-23T12:00:00.123Z")],
    [4_194_304, new Date(8.64e15)], [127, new Date(999)], [128, new Date(1_700_000_000_001)],
  ];
  for (const [pid, at] of cases) {
    const res = containerd.task.v2.DeleteResponse.decode(deleteResponse(pid, at));
    assert.equal(res.pid, pid);
    assert.equal(res.exitStatus, 137);
    const ms = at.getTime();
    assert.equal(Number(res.exitedAt?.seconds ?? 0), Math.floor(ms / 1000), `seconds for ${at.toISOString()}`);
    assert.equal(res.exitedAt?.nanos ?? 0, (ms % 1000) * 1_000_000, `nanos for ${at.toISOString()}`);
    const canonical = containerd.task.v2.DeleteResponse.encode({ pid, exitStatus: 137,
      exitedAt: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 } }).finish();
    assert.deepEqual(containerd.task.v2.DeleteResponse.decode(canonical), res);
  }
});
