// Server.snapshot(): the connections and in-flight calls the daemon's SIGUSR1 dump lists (docs/debugging.md).
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import type { Method } from "../../src/ttrpc/index.js";
import { RawConn, startServer, within } from "./harness.js";

/** A method that blocks until released, even past its deadline (a stuck handler); `started` counts calls. */
function blocker() {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const state = { started: 0 };
  const method: Method = {
    async call(payload) {
      state.started++;
      await gate;
      return payload;
    },
  };
  return { method, state, release: () => release() };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await within(new Promise<void>((resolve) => {
    timer = setInterval(() => cond() && resolve(), 5);
  }), 2000, what).finally(() => clearInterval(timer));
}

void suite("Server.snapshot()", () => {
  void test("lists each connection in accept order with the calls still running on it", async (t) => {
    const b = blocker();
    const { server, path } = await startServer(t, { Block: b.method });
    assert.deepEqual(server.snapshot(), { listening: true, connections: [] });
    const a = await RawConn.open(t, path);
    await a.echoOk(1);
    const c = await RawConn.open(t, path);
    await until(() => server.snapshot().connections.length === 2, "two connections");
    c.request(3, { service: "Test", method: "Block", payload: Buffer.from("x") });
    c.request(5, { service: "Test", method: "Block", payload: Buffer.from("y"), timeoutNano: 20_000_000 });
    await until(() => b.state.started === 2, "both calls to start");
    // The second call's deadline passes: it is answered, but its handler is still running.
    const deadline = await c.response();
    assert.equal(deadline.streamId, 5);
    const snap = server.snapshot(Date.now() + 1000);
    assert.equal(snap.listening, true);
    assert.deepEqual(snap.connections.map((x) => ({ id: x.id, calls: x.calls.length })), [{ id: 1, calls: 0 }, { id: 2, calls: 2 }]);
    const [first, second] = snap.connections[1]!.calls;
    assert.deepEqual({ ...first, ageMs: 0 }, { stream: 3, service: "Test", method: "Block", ageMs: 0 });
    assert.deepEqual({ ...second, ageMs: 0 }, { stream: 5, service: "Test", method: "Block", ageMs: 0, answered: true });
    assert.ok(first!.ageMs >= 1000 && first!.ageMs < 3000, `age of a call: ${first!.ageMs} ms`);
    assert.ok(snap.connections[0]!.ageMs >= 1000, "age of a connection");
    b.release();
    const r = await c.response();
    assert.equal(r.streamId, 3);
    await until(() => server.snapshot().connections[1]?.calls.length === 0, "calls to end");
    a.socket.destroy();
    await until(() => server.snapshot().connections.length === 1, "the closed connection to go");
    assert.equal(server.snapshot().connections[0]!.id, 2);
  });

  void test("is not listening once shut down", async (t) => {
    const { server } = await startServer(t);
    await server.shutdown();
    assert.deepEqual(server.snapshot(), { listening: false, connections: [] });
  });
});
