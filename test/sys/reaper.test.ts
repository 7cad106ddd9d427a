import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { closeSync } from "node:fs";
import { Reaper, pipe2, setChildSubreaper, type Exit, type ExitSubscription } from "../../src/sys/index.js";
import { exitOf, readAll, requireRoot, within } from "./util.js";

let reaper: Reaper;

before(() => {
  requireRoot();
  setChildSubreaper();
  reaper = new Reaper();
  reaper.start();
});
after(() => reaper.stop());

/**
 * Runs `sh -c script` through child_process (own()ed like runc), returns its stdout and exit code.
 * The script gets fd 3, a pipe that reaches EOF only when `release()` is called: orphans that first
 * `read x <&3` outlive sh (so sh cannot reap them itself) and exit exactly when released.
 */
async function sh(script: string): Promise<{ pid: number; out: string; code: number | null; release: () => void }> {
  const [gate, gateWrite] = pipe2();
  const child = spawn("sh", ["-c", script], { stdio: ["ignore", "pipe", "inherit", gate] });
  const pid = child.pid ?? -1;
  reaper.own(pid);
  closeSync(gate);
  assert.ok(child.stdout);
  try {
    const [out, [code]] = await Promise.all([readAll(child.stdout), exitOf(child)]);
    return { pid, out, code, release: () => closeSync(gateWrite) };
  } finally {
    reaper.disown(child.pid ?? -1);
  }
}

/** The exit of `pid` from `sub`, buffered or future, within `ms`. */
function exitFor(sub: ExitSubscription, pid: number, ms = 5000): Promise<Exit> {
  return within(ms, `reaped exit of pid ${pid}`, (done) => {
    const seen = sub.buffered().find((e) => e.pid === pid);
    if (seen) done(seen);
    else sub.onExit((e) => e.pid === pid && done(e));
  });
}

test("reaps an adopted orphan with its exit status", async () => {
  const sub = reaper.subscribe();
  try {
    const { out, code, release } = await sh("(read x <&3; exit 3) >/dev/null & echo $!; exit 0");
    assert.equal(code, 0);
    release();
    const pid = Number(out.trim());
    const e = await exitFor(sub, pid);
    assert.equal(e.status, 3);
    assert.ok(e.at instanceof Date);
  } finally {
    sub.close();
  }
});

test("a signalled orphan exits with 128+signal", async () => {
  const sub = reaper.subscribe();
  try {
    const { out, release } = await sh("sleep 30 >/dev/null 2>&1 & echo $!");
    release();
    const pid = Number(out.trim());
    process.kill(pid, "SIGKILL");
    assert.equal((await exitFor(sub, pid)).status, 137);
  } finally {
    sub.close();
  }
});

test("own()ed child_process children still emit exit with their code", async () => {
  const seen: number[] = [];
  const off = reaper.onExit((e) => seen.push(e.pid));
  try {
    // Orphans exiting at the same time make the reaper scan while libuv's children are exiting too.
    const runs = Array.from({ length: 10 }, (_, i) => sh(`(read x <&3) >/dev/null & exit ${i + 1}`));
    const results = await Promise.all(runs);
    for (const r of results) r.release();
    for (const r of results) assert.ok(!seen.includes(r.pid), `reaper took libuv's child ${r.pid}`);
    assert.deepEqual(results.map((r) => r.code), Array.from({ length: 10 }, (_, i) => i + 1));
  } finally {
    off();
  }
});

test("a subscription taken before a fast exit buffers it; close stops buffering", async () => {
  const sub = reaper.subscribe();
  const { out, release } = await sh("(read x <&3; exit 5) >/dev/null & echo $!");
  const pid = Number(out.trim());
  // Nobody listens on `sub`: wait through a permanent listener, then look at what `sub` kept.
  const reaped = within(5000, `exit of ${pid}`, (done) => {
    const off = reaper.onExit((e) => e.pid === pid && (off(), done(e)));
  });
  release();
  await reaped;
  assert.deepEqual(sub.buffered().filter((e) => e.pid === pid).map((e) => e.status), [5]);
  const late = reaper.subscribe();
  assert.equal(late.buffered().length, 0, "a later subscription does not see earlier exits");
  late.close();
  sub.close();
  assert.equal(sub.buffered().length, 0);
});

test("coalesced exits: many orphans at once are all reaped", async () => {
  const sub = reaper.subscribe();
  try {
    const { out, release } = await sh(
      "for i in $(seq 1 20); do (read x <&3; exit $i) >/dev/null & echo $!; done",
    );
    const pids = out.trim().split("\n").map(Number);
    release();
    assert.equal(pids.length, 20);
    const exits = await Promise.all(pids.map((p) => exitFor(sub, p)));
    assert.deepEqual(exits.map((e) => e.status), pids.map((_, i) => i + 1));
  } finally {
    sub.close();
  }
});
