import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { suite, test } from "node:test";
import { Logger, MemorySink, nullSink } from "../../src/log.js";
import { EventFd } from "../../src/sys/index.js";
import { noWorker } from "../../src/sys/bun/watch.js";
import { watchOom } from "../../src/task/oom.js";
import { waitFor } from "../helpers/wait.js";

const log = new Logger(nullSink);
const fdCount = () => readdirSync("/proc/self/fd").length;
const events = (oomKill: number) => `low 0\nhigh 0\nmax 4\noom 1\noom_kill ${oomKill}\noom_group_kill 0\n`;

void suite("EventFd", () => {
  void test("reports a signalled counter on the event loop and resets it", async () => {
    const before = fdCount();
    const efd = EventFd.create();
    assert.equal(efd.read(), 0n, "a fresh eventfd reads as 0 without blocking");
    const seen: bigint[] = [];
    efd.onSignal((n) => seen.push(n));
    efd.write(3n);
    await waitFor(() => seen.length === 1, { timeoutMs: 5_000, what: "eventfd callback" });
    assert.deepEqual(seen, [3n]);
    assert.equal(efd.read(), 0n);
    efd.write(2n);
    await waitFor(() => seen.length === 2, { timeoutMs: 5_000, what: "second eventfd callback" });
    assert.deepEqual(seen, [3n, 2n]);
    efd.close();
    efd.close();
    assert.equal(efd.read(), 0n);
    await noWorker(); // Bun: a poll Worker (its wake-up eventfd, its own loop's fds) ends with the last watch
    // Bun reads through its own dup of the fd, closed once the reader's cancel settles.
    await waitFor(() => fdCount() === before, { timeoutMs: 5_000, what: `fds back to ${before} (now ${fdCount()})` });
  });
});

void suite("watchOom() on cgroup v2 (memory.events)", () => {
  void test("reports each increase of oom_kill, and flushes a pending one synchronously", async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), "oomv2-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, "memory.events");
    writeFileSync(file, events(2));
    let ooms = 0;
    const w = watchOom({ version: 2, dir }, () => ooms++, log);
    assert.ok(w !== undefined);
    writeFileSync(file, events(3));
    await waitFor(() => ooms === 1, { timeoutMs: 5_000, what: "TaskOOM callback after oom_kill 2 -> 3" });
    writeFileSync(file, events(4));
    w.stop({ flush: true }); // same tick: the watch callback cannot have run
    assert.equal(ooms, 2, "the pending increase is reported by stop({ flush: true })");
    writeFileSync(file, events(5));
    w.stop({ flush: true });
    assert.equal(ooms, 2, "nothing after stop");
  });

  void test("ignores changes that do not raise oom_kill", (t) => {
    const dir = path.join(tmpdir(), `oomv2-${process.pid}-b`);
    mkdirSync(dir);
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(path.join(dir, "memory.events"), events(1));
    let ooms = 0;
    const w = watchOom({ version: 2, dir }, () => ooms++, log);
    writeFileSync(path.join(dir, "memory.events"), events(1).replace("max 4", "max 9"));
    w?.stop({ flush: true });
    assert.equal(ooms, 0);
  });

  void test("is undefined (not a throw) for a cgroup that cannot be watched", () => {
    assert.equal(watchOom({ version: 2, dir: "/nonexistent/cg" }, () => {}, log), undefined);
    assert.equal(watchOom({ version: 1, dirs: new Map() }, () => {}, log), undefined);
    assert.equal(watchOom(undefined, () => {}, log), undefined);
  });
});

void suite("watchOom() on cgroup v1 when the eventfd cannot be watched", () => {
  void test("closes the eventfd, logs, and answers undefined", async (t) => {
    // A v1 memory cgroup as files: registering the eventfd is a plain write; its watch then fails.
    const dir = await mkdtemp(path.join(tmpdir(), "oomv1-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(path.join(dir, "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\n");
    writeFileSync(path.join(dir, "cgroup.event_control"), "");
    EventFd.create().close(); // the native bindings are loaded before counting
    const before = fdCount();
    let made: EventFd | undefined;
    const failing = (): EventFd => {
      made = EventFd.create();
      made.onSignal = () => { throw new Error("cannot watch the eventfd"); };
      return made;
    };
    const sink = new MemorySink();
    const w = watchOom({ version: 1, dirs: new Map([["memory", dir]]) }, () => {}, new Logger(sink), { eventFd: failing });
    assert.equal(w, undefined);
    assert.ok(made !== undefined, "the watcher made its eventfd");
    assert.match(sink.lines.join(""), /level=warn msg="cannot watch cgroup for OOM kills".*cannot watch the eventfd/);
    assert.equal(fdCount(), before, "the eventfd was closed");
  });
});

void suite("watchOom() on cgroup v1: the flush at exit", () => {
  /** A v1 memory cgroup as files (registering an eventfd is a plain write), and every eventfd the watcher made. */
  async function fakeV1(t: { after(fn: () => void): void }) {
    const dir = await mkdtemp(path.join(tmpdir(), "oomv1-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(path.join(dir, "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\n");
    writeFileSync(path.join(dir, "cgroup.event_control"), "");
    const made: EventFd[] = [];
    const eventFd = () => {
      const e = EventFd.create();
      made.push(e);
      return e;
    };
    return { cg: { version: 1 as const, dirs: new Map([["memory", dir]]) }, made, eventFd };
  }

  void test("reports an OOM whose signal the runtime already read but had not delivered", async (t) => {
    // On Bun the watched eventfd's counter is read on Bun's own loop before the callback runs: a flush in
    // between found it 0, and the init's TaskExit went out with no TaskOOM before it.
    const { cg, made, eventFd } = await fakeV1(t);
    let ooms = 0;
    const w = watchOom(cg, () => ooms++, log, { eventFd });
    assert.ok(w !== undefined);
    for (const e of made) e.write(1n); // the kernel signals every registration
    made[0]!.read(); // what Bun's reader does before the callback
    w.stop({ flush: true });
    assert.equal(ooms, 1, "the flush reported the OOM");
  });

  void test("does not report again an OOM the watch delivered", async (t) => {
    const { cg, made, eventFd } = await fakeV1(t);
    let ooms = 0;
    const w = watchOom(cg, () => ooms++, log, { eventFd });
    for (const e of made) e.write(1n);
    await waitFor(() => ooms === 1, { timeoutMs: 5_000, what: "TaskOOM callback" });
    w?.stop({ flush: true });
    assert.equal(ooms, 1);
    assert.ok(made.every((e) => e.read() === 0n), "every eventfd closed");
  });
});

const MEMCG = "/sys/fs/cgroup/memory";
const v1Reason = process.getuid?.() !== 0 ? "needs root" : !existsSync(path.join(MEMCG, "cgroup.event_control"))
  ? "needs a cgroup v1 memory controller at /sys/fs/cgroup/memory" : undefined;

/** Runs a shell in memory cgroup `dir` that doubles a string until the OOM killer ends it (blocks the loop). */
function oomSync(dir: string): ReturnType<typeof spawnSync> {
  return spawnSync("sh", ["-c", `echo $$ > ${dir}/cgroup.procs && x=a && while true; do x=$x$x; done`], { timeout: 60_000 });
}

void suite("watchOom() on cgroup v1 (memory.oom_control eventfd)", { skip: v1Reason }, () => {
  const mkcg = (t: { after(fn: () => void): void }, name: string) => {
    const dir = path.join(MEMCG, `ts-oom-test-${process.pid}-${name}`);
    mkdirSync(dir);
    t.after(() => { if (existsSync(dir)) rmdirSync(dir); });
    writeFileSync(path.join(dir, "memory.limit_in_bytes"), String(16 << 20));
    return dir;
  };

  void test("reports an OOM kill through the event loop", async (t) => {
    const dir = mkcg(t, "a");
    let ooms = 0;
    const w = watchOom({ version: 1, dirs: new Map([["memory", dir]]) }, () => ooms++, log);
    t.after(() => w?.stop());
    const r = oomSync(dir);
    assert.equal(r.signal, "SIGKILL", `the child was OOM-killed: ${String(r.stderr)}`);
    await waitFor(() => ooms >= 1, { timeoutMs: 5_000, what: "TaskOOM callback" });
  });

  void test("reports a pending OOM synchronously in stop({ flush: true }), before the exit is handled", (t) => {
    const dir = mkcg(t, "b");
    let ooms = 0;
    const before = fdCount();
    const w = watchOom({ version: 1, dirs: new Map([["memory", dir]]) }, () => ooms++, log);
    assert.equal(oomSync(dir).signal, "SIGKILL");
    assert.equal(ooms, 0, "the loop was blocked: nothing delivered yet");
    w?.stop({ flush: true });
    assert.equal(ooms, 1);
    assert.equal(fdCount(), before, "eventfd closed, control file not kept");
  });

  void test("does not report the wake-up caused by removing the cgroup", (t) => {
    const dir = mkcg(t, "c");
    let ooms = 0;
    const w = watchOom({ version: 1, dirs: new Map([["memory", dir]]) }, () => ooms++, log);
    rmdirSync(dir);
    w?.stop({ flush: true });
    assert.equal(ooms, 0);
  });
});
