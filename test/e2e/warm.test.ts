// The warm spare (issue 19 lever 1; src/shim/spare/, src/shim/manager/warm.ts) under real containerd 1.6, 1.7
// and 2.1, with `SHIM_TS_WARM=1` in containerd's environment: a new pod is adopted by the booted spare; a
// spare killed with SIGKILL, or hung (SIGSTOP), costs the pod at most the adoption deadline plus the kill; after
// an upgrade of the binary new pods never land on an old daemon while old pods keep theirs; nothing is left
// once everything is deleted and the idle time has passed; no spare outlives containerd.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { cp, mkdir, rm, symlink } from "node:fs/promises";
import path from "node:path";
import { after, test } from "node:test";
import { sparePidFile, spareSocketPath } from "../../src/shim/spare/protocol.js";
import { probeSocket } from "../../src/shim/socket/socket.js";
import { REPO_ROOT } from "../helpers/image.js";
import { ctrOk, perVersion, runArgs, waitStatus } from "../helpers/ctr.js";
import type { Containerd } from "../helpers/containerd.js";
import { processesUnder } from "../helpers/procs.js";
import { alive } from "../helpers/shim.js";
import { waitFor } from "../helpers/wait.js";

const IDLE_MS = 6000;
const SOCKETS = mkdtempSync("/tmp/warm-");
after(() => rmSync(SOCKETS, { recursive: true, force: true }));

/** The time `start` may spend on a spare that is gone (a refused connect) or hung (deadline + kill + wait). */
const GONE_BOUND_MS = 200;
const HUNG_BOUND_MS = 200 + 1000 + 300;

function ppid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

function cmdline(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
}

/** The shim daemon of task `id`: the parent of its init. */
async function shimOf(c: Containerd, id: string): Promise<number> {
  const r = await ctrOk(c, ["task", "ls"]);
  const line = r.stdout.split("\n").find((l) => l.trim().split(/\s+/)[0] === id);
  const pid = Number(line?.trim().split(/\s+/)[1]);
  assert.ok(pid > 0, `task ${id} has a pid: ${r.stdout}`);
  return ppid(pid);
}

function spareSocket(c: Containerd): string {
  return spareSocketPath(c.address, c.namespace, SOCKETS);
}

/** The spare ready now (pid file, socket answering), other than `not`. */
async function readySpare(c: Containerd, not?: number): Promise<number | undefined> {
  const sock = spareSocket(c);
  let pid: number;
  try {
    pid = Number(readFileSync(sparePidFile(sock), "utf8"));
  } catch {
    return undefined;
  }
  return pid !== not && alive(pid) && (await probeSocket(sock, 500)) ? pid : undefined;
}

/** Spares of this containerd still running (by command line). */
function spares(c: Containerd): number[] {
  return processesUnder(c.dir, [c.pid]).filter((pid) => {
    try {
      return cmdline(pid).includes(" -spare ");
    } catch {
      return false;
    }
  });
}

/** `ctr run -d <id> sleep 1000`, timed. */
async function runPod(c: Containerd, id: string): Promise<number> {
  const t0 = performance.now();
  await ctrOk(c, runArgs(id, ["sleep", "1000"], { detach: true }));
  const ms = performance.now() - t0;
  await waitStatus(c, id, "RUNNING");
  return ms;
}

/** The `ms` of the start line of `id` that says it could not use the spare, from containerd's log. */
async function fallbackMs(c: Containerd, id: string, msg: string): Promise<number> {
  const line = (await c.logs()).split("\n").find((l) => l.includes(msg) && l.includes(` id=${id} `));
  assert.ok(line, `containerd's log has "${msg}" for ${id}\n${c.logTail(20)}`);
  return Number(/ ms=(\d+)/.exec(line)?.[1]);
}

perVersion("warm spare", (get) => {
  const pods: string[] = [];

  void test("a new pod is adopted by the spare, and the next spare boots", async (t) => {
    const c = get();
    const cold = await runPod(c, "w1");
    pods.push("w1");
    const spare = await waitFor(() => readySpare(c), { what: "the first spare", timeoutMs: 15_000 });
    assert.notEqual(await shimOf(c, "w1"), spare);
    const warm = await runPod(c, "w2");
    pods.push("w2");
    assert.equal(await shimOf(c, "w2"), spare, "w2's shim is the spare that was waiting");
    const next = await waitFor(() => readySpare(c, spare), { what: "the next spare", timeoutMs: 15_000 });
    assert.deepEqual(spares(c).filter((p) => p !== spare), [next], "one spare per containerd and namespace");
    t.diagnostic(`ctr run -d: cold ${Math.round(cold)} ms, warm ${Math.round(warm)} ms`);
  });

  void test("a spare killed with SIGKILL: the pod still starts, within the bound", async () => {
    const c = get();
    const spare = await waitFor(() => readySpare(c), { what: "a spare", timeoutMs: 15_000 });
    process.kill(spare, "SIGKILL");
    await waitFor(() => !alive(spare), { what: "the spare to die" });
    await runPod(c, "w3");
    pods.push("w3");
    assert.notEqual(await shimOf(c, "w3"), spare);
    const ms = await fallbackMs(c, "w3", "cannot use a warm spare");
    assert.ok(ms <= GONE_BOUND_MS, `start spent ${ms} ms on the dead spare`);
  });

  void test("a hung spare: it is killed and the pod still starts, within the bound", async () => {
    const c = get();
    const spare = await waitFor(() => readySpare(c), { what: "a spare", timeoutMs: 15_000 });
    process.kill(spare, "SIGSTOP");
    await runPod(c, "w4");
    pods.push("w4");
    assert.notEqual(await shimOf(c, "w4"), spare);
    assert.equal(alive(spare), false, "the hung spare was killed");
    const ms = await fallbackMs(c, "w4", "the warm spare did not answer");
    assert.ok(ms <= HUNG_BOUND_MS, `start spent ${ms} ms on the hung spare`);
  });

  void test("after an upgrade, new pods never join an old daemon and old pods keep theirs", async () => {
    const c = get();
    const oldSpare = await waitFor(() => readySpare(c), { what: "a spare", timeoutMs: 15_000 });
    const oldShims = new Map<string, number>();
    for (const id of pods) oldShims.set(id, await shimOf(c, id));
    // The new build: a copy of the program (another path, other files), put where containerd finds the shim.
    const build = path.join(c.dir, "build2");
    await mkdir(path.join(build, "bin"), { recursive: true });
    await cp(path.join(REPO_ROOT, "dist", "src"), path.join(build, "dist", "src"), { recursive: true });
    await cp(path.join(REPO_ROOT, "package.json"), path.join(build, "package.json"));
    await cp(path.join(REPO_ROOT, "bin", "containerd-shim-ts-v2"), path.join(build, "bin", "containerd-shim-ts-v2"));
    await symlink(path.join(REPO_ROOT, "node_modules"), path.join(build, "node_modules"));
    const link = path.join(c.dir, "bin", "containerd-shim-ts-v2");
    await rm(link);
    await symlink(path.join(build, "bin", "containerd-shim-ts-v2"), link);

    await runPod(c, "w5");
    const w5 = await shimOf(c, "w5");
    assert.ok(![oldSpare, ...oldShims.values()].includes(w5), "w5 runs on a new daemon");
    assert.match(cmdline(w5), new RegExp(`${build}/`), "of the new build");
    await waitFor(() => !alive(oldSpare), { what: "the old build's spare to exit once refused" });
    const newSpare = await waitFor(() => readySpare(c), { what: "a spare of the new build", timeoutMs: 15_000 });
    assert.match(cmdline(newSpare), new RegExp(`${build}/`));
    for (const [id, shim] of oldShims) {
      await waitStatus(c, id, "RUNNING");
      assert.equal(await shimOf(c, id), shim, `${id} keeps its daemon`);
      assert.doesNotMatch(cmdline(shim), new RegExp(`${build}/`));
    }
    await runPod(c, "w6");
    assert.equal(await shimOf(c, "w6"), newSpare, "the new build adopts its own spare");
    pods.push("w5", "w6");
  });

  void test("nothing is left after everything is deleted and the idle time has passed", async () => {
    const c = get();
    for (const id of pods) {
      await ctrOk(c, ["task", "kill", "-s", "SIGKILL", id]);
      await waitStatus(c, id, "STOPPED");
      await ctrOk(c, ["task", "delete", id]);
      await ctrOk(c, ["container", "delete", id]);
    }
    await waitFor(() => processesUnder(c.dir, [c.pid]).length === 0 && readdirSync(SOCKETS).length === 0,
      { what: "no shim, spare or socket left", timeoutMs: IDLE_MS + 10_000 });
  });

  void test("no spare is left once containerd is stopped", async () => {
    const c = get();
    await runPod(c, "w7");
    const spare = await waitFor(() => readySpare(c), { what: "a spare", timeoutMs: 15_000 });
    await c.kill9();
    await waitFor(() => !alive(spare) && spares(c).length === 0, { what: "the spare to exit with containerd gone", timeoutMs: 10_000 });
    assert.equal(readdirSync(SOCKETS).some((f) => f.startsWith(path.basename(spareSocket(c)))), false, "its socket and pid file are gone");
  });
}, { env: { SHIM_TS_WARM: "1", SHIM_TS_WARM_IDLE_MS: String(IDLE_MS), SHIM_TS_SOCKET_DIR: SOCKETS, SHIM_TS_GROUPING: "pod" } });
