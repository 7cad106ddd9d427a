// Bun's fd watches (ffi-bun.ts pollOnTimer) look with poll(2) on a timer that backs off while the fd is idle.
// Counted under mocked timers with a fake poll, so the figure is exact whatever else the machine is doing;
// a watch that looked every millisecond would make about 1000 looks in the idle second below.
import assert from "node:assert/strict";
import { afterEach, beforeEach, mock, suite, test } from "node:test";
import { EVENTFD_MAX_BACKOFF_MS, MAX_BACKOFF_MS, pollOnTimer } from "../../src/sys/ffi-bun.js";

const POLLIN = 0x1;
const POLLNVAL = 0x20;

/** A poll(2) stand-in: reports `next` once (then nothing) in the pollfd's revents, and counts its calls. */
function fakePoll() {
  const state = { calls: 0, next: 0 };
  const poll = (pfd: unknown, nfds: unknown, timeout: unknown): number => {
    state.calls++;
    assert.equal(nfds, 1);
    assert.equal(timeout, 0, "a look never blocks the loop");
    const revents = state.next;
    state.next = 0;
    new DataView((pfd as Uint8Array).buffer).setInt16(6, revents, true);
    return revents === 0 ? 0 : 1;
  };
  return { state, poll };
}

/** Advances the mocked clock 1 ms at a time: Node 20's tick() does not run timers set by the timers it runs. */
function advance(ms: number): void {
  for (let i = 0; i < ms; i++) mock.timers.tick(1);
}

void suite("Bun fd watch backoff", () => {
  beforeEach(() => mock.timers.enable({ apis: ["setTimeout"] }));
  afterEach(() => mock.timers.reset());

  for (const maxMs of [MAX_BACKOFF_MS, EVENTFD_MAX_BACKOFF_MS]) {
    void test(`an idle watch (cap ${maxMs} ms) looks about 1000/${maxMs} times a second, not every millisecond`, () => {
      const { state, poll } = fakePoll();
      let hits = 0;
      const w = pollOnTimer(poll, 7, POLLIN, maxMs, () => hits++);
      advance(1000);
      // 1, 2, 4, ... up to the cap, then one look per cap.
      const expected = Math.ceil(Math.log2(maxMs)) + 1000 / maxMs;
      assert.ok(state.calls <= expected + 2, `${state.calls} looks in an idle second (expected about ${expected})`);
      assert.ok(state.calls >= 1000 / maxMs - 2, `${state.calls} looks: the watch stopped looking`);
      assert.equal(hits, 0);
      w.close();
      const before = state.calls;
      advance(10_000);
      assert.equal(state.calls, before, "a closed watch looks no more");
    });
  }

  void test("a hit calls back at once and the next look comes 1 ms later again", () => {
    const { state, poll } = fakePoll();
    let hits = 0;
    pollOnTimer(poll, 7, POLLIN, MAX_BACKOFF_MS, () => hits++);
    advance(2000); // backed off to the cap
    state.next = POLLIN;
    let waited = 0;
    while (hits === 0 && waited < MAX_BACKOFF_MS) {
      advance(1);
      waited++;
    }
    assert.equal(hits, 1, "the data was reported within one cap");
    const after = state.calls;
    advance(1);
    assert.equal(state.calls, after + 1, "after a hit the watch looks again 1 ms later");
  });

  void test("an fd closed under the watch (POLLNVAL) ends it without a callback", () => {
    const { state, poll } = fakePoll();
    let hits = 0;
    pollOnTimer(poll, 7, POLLIN, MAX_BACKOFF_MS, () => hits++);
    advance(100);
    state.next = POLLNVAL;
    advance(MAX_BACKOFF_MS);
    const ended = state.calls;
    advance(5000);
    assert.equal(state.calls, ended);
    assert.equal(hits, 0);
  });
});
