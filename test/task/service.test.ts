import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { E, makeBundle, useService } from "./harness.js";

interface Created { pid: number }
interface Waited { exitStatus: number }
interface StateRes { status: number; pid: number; exitStatus: number }

void suite("TaskService with real runc", () => {
  const ctx = useService();

  async function run(id: string, args: string[]) {
    const b = makeBundle(ctx.root.dir, id, args);
    const created = await ctx.h.call<Created>("Create", "CreateTaskRequest", "CreateTaskResponse", { id, bundle: b.bundle, stdout: b.stdout });
    assert.ok(created.pid > 0);
    return b;
  }

  void test("runs a container: output, exit code, events in containerd's order", async () => {
    const before = ctx.h.events.length;
    const b = await run("c1", ["sh", "-c", "echo hi; exit 3"]);
    const waited = ctx.h.call<Waited>("Wait", "WaitRequest", "WaitResponse", { id: "c1" });
    await ctx.h.call("Start", "StartRequest", "StartResponse", { id: "c1" });
    assert.equal((await waited).exitStatus, 3);
    const st = await ctx.h.call<StateRes>("State", "StateRequest", "StateResponse", { id: "c1" });
    assert.equal(st.status, 3, "STOPPED");
    assert.equal(st.exitStatus, 3);
    const del = await ctx.h.call<Waited>("Delete", "DeleteRequest", "DeleteResponse", { id: "c1" });
    assert.equal(del.exitStatus, 3);
    assert.equal(b.output(), "hi\n");
    assert.deepEqual(ctx.h.topics().slice(before), ["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"]);
    const exit = E.TaskExit.decode(ctx.h.events.find((e) => e.topic === "/tasks/exit")!.value);
    assert.equal(exit.exitStatus, 3);
    assert.equal(exit.id, "c1");
    await assert.rejects(ctx.h.call("State", "StateRequest", "StateResponse", { id: "c1" }), { code: "NotFound" });
  });

  void test("publishes the exit of a process that exits at once after its start event", async () => {
    const before = ctx.h.events.length;
    await run("c2", ["true"]);
    await ctx.h.call("Start", "StartRequest", "StartResponse", { id: "c2" });
    const w = await ctx.h.call<Waited>("Wait", "WaitRequest", "WaitResponse", { id: "c2" });
    assert.equal(w.exitStatus, 0);
    await ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id: "c2" });
    assert.deepEqual(ctx.h.topics().slice(before), ["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"]);
  });

  void test("reports 128+signal for a killed container and NotFound for a second kill", async () => {
    await run("c3", ["sleep", "1000"]);
    await ctx.h.call("Start", "StartRequest", "StartResponse", { id: "c3" });
    const st = await ctx.h.call<StateRes>("State", "StateRequest", "StateResponse", { id: "c3" });
    assert.equal(st.status, 2, "RUNNING");
    await ctx.h.call("Kill", "KillRequest", null, { id: "c3", signal: 9 });
    const w = await ctx.h.call<Waited>("Wait", "WaitRequest", "WaitResponse", { id: "c3" });
    assert.equal(w.exitStatus, 137);
    await assert.rejects(ctx.h.call("Kill", "KillRequest", null, { id: "c3", signal: 9 }), { code: "NotFound" });
    await assert.rejects(ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id: "c3", execId: "nope" }), { code: "NotFound" });
    await ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id: "c3" });
  });

  void test("publishes an exec's exit before its container's exit", async () => {
    const before = ctx.h.events.length;
    await run("c4", ["sh", "-c", "trap 'exit 143' TERM; sleep 1000 & wait"]);
    await ctx.h.call("Start", "StartRequest", "StartResponse", { id: "c4" });
    const spec = { args: ["sh", "-c", "exit 5"], cwd: "/", env: ["PATH=/bin"], user: { uid: 0, gid: 0 } };
    const any = { typeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Process", value: Buffer.from(JSON.stringify(spec)) };
    await ctx.h.call("Exec", "ExecProcessRequest", null, { id: "c4", execId: "e1", spec: any });
    await assert.rejects(ctx.h.call("Exec", "ExecProcessRequest", null, { id: "c4", execId: "e1", spec: any }), { code: "AlreadyExists" });
    await ctx.h.call("Start", "StartRequest", "StartResponse", { id: "c4", execId: "e1" });
    const w = await ctx.h.call<Waited>("Wait", "WaitRequest", "WaitResponse", { id: "c4", execId: "e1" });
    assert.equal(w.exitStatus, 5);
    await ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id: "c4", execId: "e1" });
    await ctx.h.call("Kill", "KillRequest", null, { id: "c4", signal: 15 });
    assert.equal((await ctx.h.call<Waited>("Wait", "WaitRequest", "WaitResponse", { id: "c4" })).exitStatus, 143);
    await ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id: "c4" });
    assert.deepEqual(ctx.h.topics().slice(before), [
      "/tasks/create", "/tasks/start", "/tasks/exec-added", "/tasks/exec-started", "/tasks/exit", "/tasks/exit", "/tasks/delete",
    ]);
    const exits = ctx.h.events.slice(before).filter((e) => e.topic === "/tasks/exit").map((e) => E.TaskExit.decode(e.value).id);
    assert.deepEqual(exits, ["e1", "c4"]);
  });

  void test("rejects path-like ids and unknown containers with the right codes", async () => {
    await assert.rejects(ctx.h.call("Create", "CreateTaskRequest", "CreateTaskResponse", { id: "../etc", bundle: "/tmp" }), { code: "InvalidArgument" });
    await assert.rejects(ctx.h.call("State", "StateRequest", "StateResponse", { id: "nope" }), { code: "NotFound" });
    const c = await ctx.h.call<{ taskPid: number; shimPid: number }>("Connect", "ConnectRequest", "ConnectResponse", { id: "nope" });
    assert.equal(c.taskPid, 0);
    assert.equal(c.shimPid, process.pid);
  });
});
