// TaskService.snapshot(): what the daemon's SIGUSR1 dump shows of containers and execs (docs/debugging.md),
// in-process with real runc; test/fixtures/slow-runc holds an exec's Start so that a held init exit is seen.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { suite, test } from "node:test";
import { waitFor, withTimeout } from "../helpers/wait.js";
import { makeBundle, slowRunc, useService } from "./harness.js";

const PROCESS_URL = "types.containerd.io/opencontainers/runtime-spec/1/Process";
const spec = (args: string[]) => ({ typeUrl: PROCESS_URL, value: Buffer.from(JSON.stringify({ args, cwd: "/", env: ["PATH=/bin"], user: { uid: 0, gid: 0 } })) });

void suite("TaskService.snapshot()", () => {
  const ctx = useService({ exitLimits: { execHoldMs: 1500, execGraceMs: 500 } });

  void test("is empty with nothing held", () => {
    assert.deepEqual(ctx.h.svc.snapshot(), { namespace: ctx.h.ns, containers: [], creating: [], shutdownRequested: false });
  });

  void test("lists each container with its bundle, status, pid and execs, then its exit status", async () => {
    const b = makeBundle(ctx.root.dir, "s1", ["sleep", "100000"]);
    const { pid } = await ctx.h.call<{ pid: number }>("Create", "CreateTaskRequest", "CreateTaskResponse", { id: "s1", bundle: b.bundle, stdout: b.stdout });
    let c = ctx.h.svc.snapshot().containers[0];
    assert.deepEqual(c, { id: "s1", bundle: b.bundle, pid, status: "created", terminal: false, runtime: "runc", liveExecs: 0, execs: [] });
    await ctx.h.call("Start", "StartRequest", "StartResponse", { id: "s1" });
    await ctx.h.call("Exec", "ExecProcessRequest", null, { id: "s1", execId: "idle", spec: spec(["true"]) });
    await ctx.h.call("Exec", "ExecProcessRequest", null, { id: "s1", execId: "e1", spec: spec(["sleep", "100000"]) });
    const { pid: execPid } = await ctx.h.call<{ pid: number }>("Start", "StartRequest", "StartResponse", { id: "s1", execId: "e1" });
    c = ctx.h.svc.snapshot().containers[0];
    assert.equal(c?.status, "running");
    assert.equal(c?.liveExecs, 1);
    assert.deepEqual(c?.execs, [
      { execId: "idle", pid: 0, status: "created", terminal: false },
      { execId: "e1", pid: execPid, status: "running", terminal: false },
    ]);
    await ctx.h.call("Kill", "KillRequest", null, { id: "s1", execId: "e1", signal: 9 });
    await ctx.h.call("Wait", "WaitRequest", "WaitResponse", { id: "s1", execId: "e1" });
    await ctx.h.call("Kill", "KillRequest", null, { id: "s1", signal: 9 });
    await ctx.h.call("Wait", "WaitRequest", "WaitResponse", { id: "s1" });
    c = ctx.h.svc.snapshot().containers[0];
    assert.equal(c?.status, "stopped");
    assert.equal(c?.exitStatus, 137);
    assert.ok(c?.exitedAt !== undefined && !Number.isNaN(Date.parse(c.exitedAt)), `exitedAt: ${c?.exitedAt}`);
    assert.equal(c?.execs[1]?.exitStatus, 137);
    assert.equal(c?.exitHeld, undefined);
    for (const e of ["idle", "e1"]) await ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id: "s1", execId: e });
    await ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id: "s1" });
    assert.deepEqual(ctx.h.svc.snapshot().containers, []);
  });

  void test("shows an init exit held back by an exec whose Start is running, and the starting exec", async () => {
    const runc = slowRunc(ctx.root.dir, "slow-s2");
    const b = makeBundle(ctx.root.dir, "s2", ["sleep", "100000"]);
    await ctx.h.call("Create", "CreateTaskRequest", "CreateTaskResponse", { id: "s2", bundle: b.bundle, stdout: b.stdout, options: runc.options });
    const { pid } = await ctx.h.call<{ pid: number }>("Start", "StartRequest", "StartResponse", { id: "s2" });
    await ctx.h.call("Exec", "ExecProcessRequest", null, { id: "s2", execId: "e1", spec: spec(["sleep", "100000"]) });
    runc.holdExec();
    const start = ctx.h.call("Start", "StartRequest", "StartResponse", { id: "s2", execId: "e1" }).catch((e: Error) => e);
    await waitFor(() => runc.execWaiting(), { what: "runc exec of e1 to be running" });
    await ctx.h.call("Kill", "KillRequest", null, { id: "s2", signal: 9 });
    await waitFor(() => !existsSync(`/proc/${pid}`), { what: "the init to be reaped" });
    await waitFor(() => ctx.h.svc.snapshot().containers[0]?.exitHeld, { what: "the held init exit in the snapshot" });
    const c = ctx.h.svc.snapshot().containers[0];
    assert.equal(c?.status, "running", "a held exit is not recorded yet");
    assert.equal(c?.runtime, runc.binary);
    assert.equal(c?.liveExecs, 1);
    assert.equal(c?.execs[0]?.starting, true);
    runc.releaseExec();
    await withTimeout(start, 20_000, "the exec's Start to end");
    await ctx.h.call("Wait", "WaitRequest", "WaitResponse", { id: "s2" });
    const after = ctx.h.svc.snapshot().containers[0];
    assert.equal(after?.exitHeld, undefined);
    assert.equal(after?.execs[0]?.starting, undefined);
    assert.equal(after?.exitStatus, 137);
    await ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id: "s2", execId: "e1" });
    await ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id: "s2" });
  });

  void test("records a Shutdown request", async () => {
    // With nothing held the daemon would exit at once; the flag is what the dump shows meanwhile.
    await ctx.h.call("Shutdown", "ShutdownRequest", null, {});
    assert.equal(ctx.h.svc.snapshot().shutdownRequested, true);
  });
});
