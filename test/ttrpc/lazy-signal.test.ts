// The per-call AbortSignal is made only when a handler asks for it, and answers that are ready together
// share one write (the socket is corked for the rest of the tick). Neither may change what a client sees.
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { ShimError } from "../../src/errdefs.js";
import { Client } from "../../src/ttrpc/index.js";
import { gated, RawConn, startServer, within } from "./harness.js";

void suite("ttrpc calls: the signal on demand, answers batched", () => {
  void test("a signal first asked for after the deadline passed is already aborted with DeadlineExceeded", async (t) => {
    const l = gated(false);
    const { path } = await startServer(t, { Late: l.method });
    const raw = await RawConn.open(t, path);
    raw.request(1, { service: "Test", method: "Late", timeoutNano: 20e6 });
    const ctx = await within(l.started, 2000, "call to start");
    assert.equal((await raw.response()).code, 4, "DEADLINE_EXCEEDED answered");
    const signal = ctx.signal;
    assert.equal(signal.aborted, true);
    assert.equal((signal.reason as ShimError).code, "DeadlineExceeded");
    assert.equal(ctx.signal, signal, "the same signal on every read");
    l.release();
    await raw.echoOk(3);
  });

  void test("a signal first asked for after the connection closed is already aborted with Canceled", async (t) => {
    const l = gated(false);
    const { server, path } = await startServer(t, { Late: l.method });
    const client = await Client.connect(path);
    const call = client.call("Test", "Late", new Uint8Array(0));
    const ctx = await within(l.started, 2000, "call to start");
    client.close();
    await assert.rejects(call, { code: "Unavailable" });
    await within((async () => { while (server.activeConnections > 0) await new Promise((r) => setImmediate(r)); })(), 2000, "the connection to close");
    assert.equal(ctx.signal.aborted, true);
    assert.equal((ctx.signal.reason as ShimError).code, "Canceled");
    l.release();
  });

  void test("a signal asked for at once is live, and aborts when the deadline passes", async (t) => {
    let seen: AbortSignal | undefined;
    const { path } = await startServer(t, {
      Watch: { call: async (_p, ctx) => ((seen = ctx.signal), await new Promise((r) => ctx.signal.addEventListener("abort", r)), new Uint8Array(0)) },
    });
    const raw = await RawConn.open(t, path);
    raw.request(1, { service: "Test", method: "Watch", timeoutNano: 30e6 });
    assert.equal((await raw.response()).code, 4);
    assert.equal(seen?.aborted, true);
  });

  void test("64 requests in one write, half answered at once and half later, all come back right", async (t) => {
    const { path } = await startServer(t, {
      Slow: { call: async (p) => (await new Promise((r) => setTimeout(r, 5)), p) },
    });
    const raw = await RawConn.open(t, path);
    raw.socket.cork();
    for (let i = 0; i < 64; i++) {
      const id = 2 * i + 1;
      raw.request(id, { service: "Test", method: i % 2 === 0 ? "Echo" : "Slow", payload: Buffer.from(`p${id}`) });
    }
    raw.socket.uncork();
    const got = new Map<number, string>();
    for (let i = 0; i < 64; i++) {
      const r = await raw.response();
      assert.equal(r.code, 0);
      got.set(r.streamId, Buffer.from(r.payload).toString());
    }
    assert.equal(got.size, 64);
    for (const [id, p] of got) assert.equal(p, `p${id}`);
  });
});
