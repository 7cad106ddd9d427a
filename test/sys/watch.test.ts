// fd watches (ffi.ts watchReadable/watchEventfd through EventFd and waitReadable), on the runtime running the
// test: koffi's libuv poll handle on Node, the poll(2) Worker on Bun (src/sys/bun/watch.ts; runtime.test.ts runs this
// file under `bun test` too). Readiness is awaited with a deadline, never slept for; idle is checked by counting
// the wake-ups (callbacks, and on Bun the Worker's poll(2) returns) over a window, not by CPU time.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { closeSync, writeSync } from "node:fs";
import path from "node:path";
import { suite, test } from "node:test";
import { fileURLToPath } from "node:url";
import { RUNTIME } from "../../src/sys/ffi.js";
import { EventFd, pipe2, unreadBytes } from "../../src/sys/index.js";
import { waitReadable } from "../../src/sys/libc.js";
import { noWorker, watchStats, workerPolls } from "../../src/sys/bun/watch.js";
import { exitOf, readAll, within } from "./util.js";

const onBun = RUNTIME === "bun";
const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), "watch-child.js");
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An EventFd whose signals are handed out one by one as promises, with the ms from write to callback. */
function signalled(efd: EventFd) {
  let next: ((n: bigint) => void) | undefined;
  const seen: bigint[] = [];
  efd.onSignal((n) => {
    seen.push(n);
    next?.(n);
  });
  return {
    seen,
    async signal(n: bigint): Promise<number> {
      const got = within<bigint>(5000, "eventfd callback", (done) => (next = done));
      const t0 = performance.now();
      efd.write(n);
      assert.equal(await got, n);
      return performance.now() - t0;
    },
  };
}

void suite(`fd watches on ${RUNTIME}`, () => {
  void test("a signal is seen within a few ms after idling, and idle watches wake nobody", async () => {
    const efd = EventFd.create();
    const [r, w] = pipe2();
    try {
      const s = signalled(efd);
      await s.signal(1n); // on Bun this starts the Worker
      const pending = waitReadable(r); // a second watch, never ready in the windows
      const latencies: number[] = [];
      for (let round = 0; round < 5; round++) {
        await delay(100); // lets the re-arm after the last callback reach the Worker
        const polls = workerPolls();
        const callbacks = s.seen.length;
        await delay(300); // the idle window that is counted
        assert.equal(s.seen.length, callbacks, "a callback while nothing was signalled");
        if (onBun) assert.equal(workerPolls(), polls, "the Worker woke while no watched fd changed");
        latencies.push(await s.signal(BigInt(round + 2)));
      }
      latencies.sort((a, b) => a - b);
      // Measured (2 shared cores): median 0.1-0.3 ms on both runtimes; the old Bun timer backed off to 250 ms.
      assert.ok(latencies[2]! < 10, `median ${latencies[2]!.toFixed(2)} ms from signal to callback: ${latencies.map((l) => l.toFixed(2))}`);
      assert.deepEqual(s.seen, [1n, 2n, 3n, 4n, 5n, 6n]);
      writeSync(w, "x");
      await within(5000, "pipe readable", (done) => void pending.then(done));
      assert.equal(unreadBytes(r), 1, "waiting did not read");
    } finally {
      efd.close();
      closeSync(r);
      closeSync(w);
    }
  });

  void test("readiness that came before the watch is not lost, and nothing is read", async () => {
    const efd = EventFd.create();
    const [r, w] = pipe2();
    try {
      efd.write(7n); // before the watch: the counter is already non-zero
      assert.equal(await within<bigint>(5000, "the early signal", (done) => efd.onSignal(done)), 7n);
      writeSync(w, "ab"); // as a console socket that already holds its message
      await within(5000, "readable pipe", (done) => void waitReadable(r).then(done));
      assert.equal(unreadBytes(r), 2);
    } finally {
      efd.close();
      closeSync(r);
      closeSync(w);
    }
  });

  void test("many short watches, closed in their callbacks, each see their own fd", async () => {
    const pipes = Array.from({ length: 100 }, () => pipe2());
    try {
      const waits = pipes.map(([r]) => waitReadable(r));
      for (let i = pipes.length - 1; i >= 0; i -= 2) writeSync(pipes[i]![1], "x");
      for (let i = pipes.length - 1; i >= 0; i -= 2) await within(5000, `pipe ${i}`, (done) => void waits[i]!.then(done));
      let early = 0;
      for (let i = 0; i < pipes.length; i += 2) void waits[i]!.then(() => early++);
      await delay(50);
      assert.equal(early, 0, "a watch fired for an fd that was not readable");
      for (let i = 0; i < pipes.length; i += 2) writeSync(pipes[i]![1], "x");
      await within(5000, "the other half", (done) => void Promise.all(waits).then(done));
    } finally {
      for (const [r, w] of pipes) {
        closeSync(r);
        closeSync(w);
      }
    }
  });

  // Bun only (runtime.test.ts runs this file under `bun test`); Node has no Worker to end.
  if (onBun) void test("on Bun the Worker ends once no watch is left", async () => {
    const efd = EventFd.create();
    efd.onSignal(() => {});
    const [r, w] = pipe2();
    const waiting = waitReadable(r).catch(() => {});
    closeSync(w); // hang-up: the waitReadable resolves
    await within(5000, "hang-up seen", (done) => void waiting.then(done));
    efd.close();
    await within(5000, "the Worker's exit", (done) => void noWorker().then(done));
    assert.equal(watchStats.exited, watchStats.workers);
    closeSync(r);
  });

  /** Runs watch-child.js with `args`; its exit status and what it printed. */
  async function child(args: string[]) {
    const c = spawn(process.execPath, [CHILD, ...args], { stdio: ["ignore", "pipe", "inherit"] });
    const out = readAll(c.stdout!, 10_000);
    assert.deepEqual(await exitOf(c, 10_000), [0, null], "the child did not exit by itself");
    return JSON.parse(await out) as { workers: number };
  }

  // Bun's own fd reader (the eventfd watch there) cannot be unref'd: on Bun only a closed watch lets go.
  if (!onBun) void test("an unref'd eventfd watch does not keep the process alive", async () => {
    await child([]);
  });

  void test("a closed eventfd watch does not keep the process alive, and starts no Worker", async () => {
    // On Bun the poll Worker (4-6 MiB of heap) ran for as long as an eventfd was watched, which on cgroup v1
    // is a daemon's whole life with a container (its OOM watch).
    assert.equal((await child(["close"])).workers, 0);
  });
});
