import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { test, type TestContext } from "node:test";
import { GROUP_SERVICE, GroupMembers, bindOrJoin, joinGroup, releasingAfter, responseCode } from "../../../src/shim/socket/join.js";
import { removeSocket } from "../../../src/shim/socket/socket.js";
import { Server, type Method } from "../../../src/ttrpc/index.js";
import { ttrpc } from "../../../src/gen/ttrpc.js";
import { tempDir } from "../../helpers/shim.js";

/** A ttrpc server on a temp socket; `register` sets up its services before it serves. */
async function serveAt(t: TestContext, register: (s: Server) => void): Promise<{ sock: string; server: Server; listener: net.Server }> {
  const sock = path.join(await tempDir(t, "shim-join-"), "s.sock");
  const server = new Server();
  register(server);
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(sock, resolve));
  server.serve(listener);
  t.after(() => server.close());
  return { sock, server, listener };
}

void test("responseCode reads google.rpc.Status.code from a ttrpc.Response, 0 when there is none", () => {
  const enc = (m: object) => ttrpc.Response.encode(m).finish();
  assert.equal(responseCode(enc({ payload: Buffer.from("x") })), 0);
  assert.equal(responseCode(enc({ status: { code: 14, message: "going" } })), 14);
  assert.equal(responseCode(enc({ payload: Buffer.from("abc"), status: { message: "m", code: 5 } })), 5);
  assert.equal(responseCode(new Uint8Array([0x0a, 0x80])), 0, "truncated");
});

void test("a join is held until the id's Create settled, and the release is reported", async (t) => {
  let released = 0;
  const members = new GroupMembers(() => released++);
  let create!: () => void;
  const slowCreate: Method = { call: () => new Promise((resolve) => { create = () => resolve(new Uint8Array()); }) };
  const { sock } = await serveAt(t, (s) => s.register(GROUP_SERVICE, members.methods(() => false)));
  assert.equal(await joinGroup(sock, "c1"), "joined");
  assert.equal(members.size, 1);
  const m = releasingAfter(slowCreate, members, (p) => Buffer.from(p).toString());
  const call = m.call(Buffer.from("c1"), {} as never);
  await new Promise(setImmediate);
  assert.equal(members.size, 1, "still held while Create runs");
  create();
  await call;
  assert.deepEqual([members.size, released], [0, 1]);
  members.release("c1");
  assert.equal(released, 1, "a second release of one id reports nothing");
});

void test("a member whose Create never comes is released after the TTL", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  let released = 0;
  const members = new GroupMembers(() => released++, 1000);
  members.hold("c1");
  t.mock.timers.tick(999);
  assert.equal(members.size, 1);
  t.mock.timers.tick(1);
  assert.deepEqual([members.size, released], [0, 1]);
});

void test("a leaving daemon answers Unavailable, and an older daemon without Join counts as joined", async (t) => {
  const members = new GroupMembers(() => {});
  const leaving = await serveAt(t, (s) => s.register(GROUP_SERVICE, members.methods(() => true)));
  assert.equal(await joinGroup(leaving.sock, "c1"), "leaving");
  assert.equal(members.size, 0);
  const older = await serveAt(t, (s) => s.register("containerd.task.v2.Task", {}));
  assert.equal(await joinGroup(older.sock, "c1"), "joined");
  assert.equal(await joinGroup(path.join(path.dirname(older.sock), "none.sock"), "c1"), "leaving", "no socket");
});

void test("bindOrJoin waits out a leaving daemon and binds the socket once it is gone", async (t) => {
  let refusals = 0;
  const members = new GroupMembers(() => {});
  const { sock, listener } = await serveAt(t, (s) => s.register(GROUP_SERVICE, members.methods(() => true)));
  const bound = await bindOrJoin(sock, "c1", () => {
    // The leaving daemon unlinks its socket as its shutdown's first step: here, after the second refusal.
    if (++refusals === 2) removeSocket(sock);
  });
  t.after(() => { if (bound !== "joined") bound.close(); listener.close(); });
  assert.notEqual(bound, "joined");
  assert.equal(refusals, 2);
  assert.ok(existsSync(sock), "a new socket at the group's path");
});
