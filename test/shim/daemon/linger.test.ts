// The namespace daemon's linger (src/shim/daemon/linger.ts): when it exits once it holds nothing, and what
// keeps it. Timers are mocked: each step is a tick, not a wait.
import assert from "node:assert/strict";
import { suite, test, type TestContext } from "node:test";
import { Linger } from "../../../src/shim/daemon/linger.js";

/** A Linger over a fake daemon: `held` things, and the exits it asked for. */
function daemon(t: TestContext, lingerMs: number) {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 10_000 });
  const state = { held: 0, exits: [] as string[], started: [] as number[] };
  const linger = new Linger(lingerMs, () => state.held === 0, (reason) => state.exits.push(reason), (ms) => state.started.push(ms));
  return { state, linger, tick: (ms: number) => t.mock.timers.tick(ms) };
}

void suite("linger", () => {
  void test("0 exits as soon as the daemon holds nothing (today's behaviour, pod grouping)", (t) => {
    const { state, linger } = daemon(t, 0);
    state.held = 1;
    linger.idle();
    assert.deepEqual(state.exits, [], "holds something: stays");
    state.held = 0;
    linger.idle();
    assert.deepEqual(state.exits, ["shutdown requested"]);
    assert.deepEqual(linger.snapshot(), { lingerMs: 0 });
  });

  void test("serves on for the linger once it holds nothing, then exits", (t) => {
    const { state, linger, tick } = daemon(t, 3000);
    linger.idle();
    assert.deepEqual(state.started, [3000]);
    assert.equal(linger.lingering, true);
    tick(2999);
    assert.deepEqual(state.exits, [], "still lingering 1 ms before the end");
    assert.deepEqual(linger.snapshot(), { lingerMs: 3000, idleMs: 2999 });
    tick(1);
    assert.deepEqual(state.exits, ["linger ended"]);
    assert.equal(linger.lingering, false);
  });

  void test("a repeated idle (another Shutdown while it lingers) does not extend the linger", (t) => {
    const { state, linger, tick } = daemon(t, 1000);
    linger.idle();
    tick(600);
    linger.idle();
    tick(400);
    assert.deepEqual(state.exits, ["linger ended"]);
    assert.deepEqual(state.started, [1000]);
  });

  void test("a pod arriving in the linger keeps the daemon; once it goes, a whole linger starts again", (t) => {
    const { state, linger, tick } = daemon(t, 1000);
    linger.idle();
    tick(900);
    state.held = 1; // a Join: busy(), then the member is held
    linger.busy();
    tick(5000);
    assert.deepEqual(state.exits, [], "no exit while the pod lives");
    assert.deepEqual(linger.snapshot(), { lingerMs: 1000 });
    state.held = 0;
    linger.idle();
    tick(999);
    assert.deepEqual(state.exits, [], "the new linger is a whole one");
    tick(1);
    assert.deepEqual(state.exits, ["linger ended"]);
  });

  void test("the timer asks again when it fires: something held without busy() (a bare Create) keeps the daemon", (t) => {
    const { state, linger, tick } = daemon(t, 1000);
    linger.idle();
    state.held = 1;
    tick(1000);
    assert.deepEqual(state.exits, []);
    assert.equal(linger.lingering, false);
    state.held = 0;
    linger.idle();
    tick(1000);
    assert.deepEqual(state.exits, ["linger ended"]);
  });

  void test("stop() (SIGTERM while lingering) leaves no timer behind, and none starts after it", (t) => {
    const { state, linger, tick } = daemon(t, 1000);
    linger.idle();
    linger.stop();
    tick(2000);
    assert.deepEqual(state.exits, []);
    assert.equal(linger.lingering, false);
    linger.idle();
    assert.equal(linger.lingering, false, "a Join refused during shutdown starts no linger");
  });

  void test("a wrapped Create or Join stops the linger; if it took nothing on, a whole linger starts once it settled", async (t) => {
    const { state, linger, tick } = daemon(t, 1000);
    let requested = true;
    const failing = linger.wrap({ call: () => Promise.reject(new Error("bad config")) }, () => requested);
    const taking = linger.wrap({ call: () => { state.held = 1; return Promise.resolve(new Uint8Array()); } }, () => requested);
    linger.idle();
    tick(900);
    const call = failing.call(new Uint8Array(), {} as never);
    assert.equal(linger.lingering, false, "stopped while the call runs");
    await assert.rejects(call, /bad config/);
    assert.equal(linger.lingering, true, "lingering again: the failed Create took nothing on");
    tick(999);
    assert.deepEqual(state.exits, [], "a whole new linger");
    await taking.call(new Uint8Array(), {} as never);
    tick(5000);
    assert.deepEqual(state.exits, [], "a Create that took a container on keeps the daemon");
    state.held = 0;
    requested = false;
    await failing.call(new Uint8Array(), {} as never).catch(() => undefined);
    assert.equal(linger.lingering, false, "no Shutdown asked for yet (a daemon still waiting for its first Create): no linger");
  });
});
