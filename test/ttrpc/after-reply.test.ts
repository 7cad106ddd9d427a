// CallContext.afterReply: what the task service uses to publish a Kill's exit only after the Kill's answer.
import assert from "node:assert/strict";
import { once } from "node:events";
import { suite, test } from "node:test";
import type { CallContext, Method } from "../../src/ttrpc/index.js";
import { RawConn, startServer, within } from "./harness.js";

/** A method that registers an afterReply callback, then blocks until released (or aborted). */
function probe(log: string[]) {
  let release!: () => void;
  let onStart!: (ctx: CallContext) => void;
  const started = new Promise<CallContext>((r) => (onStart = r));
  const gate = new Promise<void>((r) => (release = r));
  const method: Method = {
    async call(payload, ctx) {
      ctx.afterReply(() => log.push("afterReply"));
      onStart(ctx);
      await Promise.race([gate, once(ctx.signal, "abort")]);
      log.push("handler returns");
      if (ctx.signal.aborted) throw ctx.signal.reason;
      return payload;
    },
  };
  return { method, started, release };
}

/** Resolves once `cond()` holds (polled), or rejects after 2 s naming `what`. */
function until(cond: () => boolean, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return within(new Promise<void>((resolve) => {
    timer = setInterval(() => cond() && resolve(), 5);
  }), 2000, what).finally(() => clearInterval(timer));
}

void suite("CallContext.afterReply", () => {
  void test("runs once the answer was written, not before, and at once when registered later", async (t) => {
    const log: string[] = [];
    const p = probe(log);
    const { path } = await startServer(t, { Probe: p.method });
    const raw = await RawConn.open(t, path);
    raw.request(1, { service: "Test", method: "Probe", payload: Buffer.from("x") });
    const ctx = await within(p.started, 2000, "the call to start");
    assert.deepEqual(log, []);
    p.release();
    const r = await raw.response();
    assert.equal(r.code, 0);
    await until(() => log.length === 2, "afterReply");
    assert.deepEqual(log, ["handler returns", "afterReply"]);
    let late = false;
    ctx.afterReply(() => (late = true));
    await Promise.resolve();
    assert.equal(late, true);
  });

  void test("runs when the deadline answer was written, and when the connection closes first", async (t) => {
    const log: string[] = [];
    const p = probe(log);
    const { path } = await startServer(t, { Probe: p.method });
    const raw = await RawConn.open(t, path);
    raw.request(1, { service: "Test", method: "Probe", timeoutNano: 20e6 });
    const r = await raw.response();
    assert.equal(r.code, 4, "DEADLINE_EXCEEDED");
    await until(() => log.includes("afterReply"), "afterReply after the deadline");

    const log2: string[] = [];
    const p2 = probe(log2);
    const s2 = await startServer(t, { Probe: p2.method });
    const raw2 = await RawConn.open(t, s2.path);
    raw2.request(1, { service: "Test", method: "Probe" });
    await within(p2.started, 2000, "the call to start");
    raw2.socket.destroy();
    await until(() => log2.includes("afterReply"), "afterReply after close");
    assert.equal(log2[0], "afterReply", "the connection closed: nothing will be written, callbacks run at once");
  });
});
