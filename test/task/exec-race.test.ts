// Exec calls around the init's exit (issue 8, item 2). runc is test/fixtures/slow-runc, whose `exec` waits
// until the test releases it, so "the init exits while an exec is starting" happens every time.
// As in runc-v2, Exec (create) is accepted while the init's exit is held back and only Start is refused
// (FailedPrecondition); the held exit is published whatever the client does next, and nothing is left.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { suite, test } from "node:test";
import { containerProcesses } from "../helpers/procs.js";
import { waitFor, withTimeout } from "../helpers/wait.js";
import { E, makeBundle, slowRunc, useService } from "./harness.js";

interface Waited { exitStatus: number }
interface StateRes { status: number }
const RUNNING = 2;
const PROCESS_URL = "types.containerd.io/opencontainers/runtime-spec/1/Process";
const spec = (args: string[]) => ({ typeUrl: PROCESS_URL, value: Buffer.from(JSON.stringify({ args, cwd: "/", env: ["PATH=/bin"], user: { uid: 0, gid: 0 } })) });
type Outcome = string;
/** "OK" or "<code>: <message>" of a call, so a test can assert on both without unhandled rejections. */
const outcome = (p: Promise<unknown>): Promise<Outcome> => p.then(() => "OK", (e: Error & { code?: string }) => `${e.code}: ${e.message}`);

// The bound tests rely on: a held init exit waits 1.5 s for execs before ending them, 0.5 s more at most.
const LIMITS = { execHoldMs: 1500, execGraceMs: 500 };

void suite("Exec around the init's exit", () => {
  const ctx = useService({ exitLimits: LIMITS });
  let n = 0;

  /** A running container and an exec e1 whose Start is stuck in `runc exec`, and the init then killed. */
  async function execStartingWhenInitDies(signal?: AbortSignal) {
    const id = `r${++n}`;
    const runc = slowRunc(ctx.root.dir, `slow-${id}`);
    const b = makeBundle(ctx.root.dir, id, ["sleep", "100000"]);
    await ctx.h.call("Create", "CreateTaskRequest", "CreateTaskResponse", { id, bundle: b.bundle, stdout: b.stdout, options: runc.options });
    const { pid } = await ctx.h.call<{ pid: number }>("Start", "StartRequest", "StartResponse", { id });
    const mark = ctx.h.timeline.length;
    await ctx.h.call("Exec", "ExecProcessRequest", null, { id, execId: "e1", spec: spec(["sleep", "100000"]) });
    runc.holdExec();
    const start1 = outcome(ctx.h.call("Start", "StartRequest", "StartResponse", { id, execId: "e1" }, signal));
    await waitFor(() => runc.execWaiting(), { what: "runc exec of e1 to be running" });
    const waited = ctx.h.call<Waited>("Wait", "WaitRequest", "WaitResponse", { id });
    await ctx.h.call("Kill", "KillRequest", null, { id, signal: 9 });
    // Reaped: the shim has seen the exit and holds it back for e1.
    await waitFor(() => !existsSync(`/proc/${pid}`), { what: "the init to be reaped" });
    const state = await ctx.h.call<StateRes>("State", "StateRequest", "StateResponse", { id });
    assert.equal(state.status, RUNNING, "the init exit is held while e1 starts");
    return { id, runc, start1, waited, mark };
  }

  /** Topics since `mark`, with exec ids and exit ids. */
  function events(mark: number): string[] {
    const evs = ctx.h.events.slice(ctx.h.timeline.slice(0, mark).filter((t) => !t.startsWith("reply ")).length);
    return evs.map((e) => {
      if (e.topic === "/tasks/exit") return `exit ${E.TaskExit.decode(e.value).id}`;
      if (e.topic === "/tasks/exec-added") return `exec-added ${E.TaskExecAdded.decode(e.value).execId}`;
      if (e.topic === "/tasks/exec-started") return `exec-started ${E.TaskExecStarted.decode(e.value).execId}`;
      return e.topic;
    });
  }

  /** Deletes the execs and the task, then checks nothing is left: runc state, processes, pid files. */
  async function deleteAndCheck(id: string, execs: string[]) {
    for (const e of execs) await ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id, execId: e });
    await ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id });
    const list = execFileSync("runc", ["--root", `/run/containerd/runc/${ctx.h.ns}`, "list", "-q"]).toString().split("\n");
    assert.ok(!list.includes(id), `runc still knows ${id}`);
    assert.deepEqual(containerProcesses(ctx.h.ns, id), [], "processes left in the container's cgroup");
    for (const e of execs) assert.equal(existsSync(path.join(ctx.root.dir, id, `${e}.pid`)), false, `${e}.pid left`);
    assert.equal(ctx.h.svc.size, 0);
  }

  void test("Exec is accepted while the init exit is held, its Start is refused, and the exit follows the starting exec", async () => {
    const { id, runc, start1, waited, mark } = await execStartingWhenInitDies();
    assert.equal(await outcome(ctx.h.call("Exec", "ExecProcessRequest", null, { id, execId: "e2", spec: spec(["true"]) })), "OK");
    const start2 = await outcome(ctx.h.call("Start", "StartRequest", "StartResponse", { id, execId: "e2" }));
    assert.match(start2, /^FailedPrecondition: .*init process is not running/);
    runc.releaseExec();
    assert.match(await start1, /^FailedPrecondition: .*init process is not running/);
    assert.equal((await withTimeout(waited, 20_000, "Wait on the init")).exitStatus, 137);
    assert.deepEqual(events(mark), ["exec-added e1", "exec-added e2", "exit " + id]);
    await deleteAndCheck(id, ["e1", "e2"]);
  });

  void test("the held exit is published when the starting exec's client disconnects, with an exec created and never started", async () => {
    const ac = new AbortController();
    const { id, start1, waited, mark } = await execStartingWhenInitDies(ac.signal);
    assert.equal(await outcome(ctx.h.call("Exec", "ExecProcessRequest", null, { id, execId: "e2", spec: spec(["true"]) })), "OK");
    ac.abort(Object.assign(new Error("Connection closed"), { code: "Canceled" }));
    assert.match(await start1, /^FailedPrecondition: /);
    assert.equal((await withTimeout(waited, 20_000, "Wait on the init")).exitStatus, 137);
    assert.deepEqual(events(mark), ["exec-added e1", "exec-added e2", "exit " + id]);
    await deleteAndCheck(id, ["e1", "e2"]);
  });

  void test("the held exit is published within its bound when runc exec never returns", async () => {
    const { id, runc, start1, waited, mark } = await execStartingWhenInitDies();
    // Nothing releases runc exec: after execHoldMs the start is aborted, and the exit goes out.
    assert.equal((await withTimeout(waited, 20_000, "Wait on the init")).exitStatus, 137);
    assert.match(await start1, /^FailedPrecondition: /);
    assert.deepEqual(events(mark), ["exec-added e1", "exit " + id]);
    runc.releaseExec();
    await deleteAndCheck(id, ["e1"]);
  });

  void test("Kill and Delete of an exec while it starts wait for the start: Delete is refused (running), Kill kills it", async () => {
    const id = `r${++n}`;
    const runc = slowRunc(ctx.root.dir, `slow-${id}`);
    const b = makeBundle(ctx.root.dir, id, ["sleep", "100000"]);
    await ctx.h.call("Create", "CreateTaskRequest", "CreateTaskResponse", { id, bundle: b.bundle, stdout: b.stdout, options: runc.options });
    await ctx.h.call("Start", "StartRequest", "StartResponse", { id });
    await ctx.h.call("Exec", "ExecProcessRequest", null, { id, execId: "e1", spec: spec(["sleep", "100000"]) });
    runc.holdExec();
    const start = outcome(ctx.h.call("Start", "StartRequest", "StartResponse", { id, execId: "e1" }));
    await waitFor(() => runc.execWaiting(), { what: "runc exec of e1 to be running" });
    const mark = ctx.h.timeline.length;
    const del = outcome(ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id, execId: "e1" }));
    const kill = outcome(ctx.h.call("Kill", "KillRequest", null, { id, execId: "e1", signal: 9 }));
    runc.releaseExec();
    assert.equal(await start, "OK");
    assert.match(await del, /^FailedPrecondition: .*running state/);
    assert.equal(await kill, "OK");
    const w = await ctx.h.call<Waited>("Wait", "WaitRequest", "WaitResponse", { id, execId: "e1" });
    assert.equal(w.exitStatus, 137);
    const order = ctx.h.timeline.slice(mark).filter((t) => ["reply Kill", "/tasks/exit", "/tasks/exec-started"].includes(t));
    assert.deepEqual(order, ["/tasks/exec-started", "reply Kill", "/tasks/exit"]);
    // The init exit is not held by e1 any more.
    await ctx.h.call("Kill", "KillRequest", null, { id, signal: 9 });
    await withTimeout(ctx.h.call("Wait", "WaitRequest", "WaitResponse", { id }), 20_000, "Wait on the init");
    await deleteAndCheck(id, ["e1"]);
  });
});
