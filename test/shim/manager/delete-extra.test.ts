// Tests of the `delete` action's hand-encoded answer and its removal of a dead shim's socket.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { test } from "node:test";
import { containerd } from "../../../src/gen/bootstrap.js";
import { deleteResponse, removeDeadSocket } from "../../../src/shim/manager/delete.js";
import { tempDir } from "../../helpers/shim.js";

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

void test("removes the socket of a dead shim, keeps a live one and anything that is not a socket", async (t) => {
  const dir = await tempDir(t, "shim-delete-sock-");
  const bundle = (name: string, sock: string): string => {
    const b = path.join(dir, name);
    mkdirSync(b);
    writeFileSync(path.join(b, "address"), `unix://${sock}`);
    return b;
  };
  // Bound but never listening: connect is refused, as for the socket of a killed daemon.
  const dead = path.join(dir, "dead.sock");
  execFileSync("python3", ["-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", dead]);
  assert.equal(await removeDeadSocket(bundle("a", dead)), undefined);
  assert.equal(existsSync(dead), false);

  const live = path.join(dir, "live.sock");
  const server = net.createServer((c) => c.destroy());
  await new Promise<void>((resolve) => server.listen(live, resolve));
  t.after(() => server.close());
  assert.equal(await removeDeadSocket(bundle("b", live)), undefined);
  assert.equal(existsSync(live), true);

  const plain = path.join(dir, "plain");
  writeFileSync(plain, "");
  assert.equal(await removeDeadSocket(bundle("c", plain)), undefined);
  assert.equal(existsSync(plain), true);
  assert.equal(await removeDeadSocket(path.join(dir, "no-bundle")), undefined);
});
