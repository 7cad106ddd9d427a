// A Kill is answered before the exit it causes is published (issue 8, item 1). containerd 2.x deletes the
// task and closes its connection as soon as /tasks/exit arrives, so a Kill reply written after it is lost
// ("ttrpc: closed"). runc here is test/fixtures/slow-runc with `kill` returning only once the signalled init
// was reaped: without the ordering, the exit is always published first.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { suite, test } from "node:test";
import { waitFor } from "../helpers/wait.js";
import { E, makeBundle, slowRunc, useService } from "./harness.js";

interface Waited { exitStatus: number }
const PROCESS_URL = "types.containerd.io/opencontainers/runtime-spec/1/Process";
const spec = (args: string[]) => ({ typeUrl: PROCESS_URL, value: Buffer.from(JSON.stringify({ args, cwd: "/", env: ["PATH=/bin"], user: { uid: 0, gid: 0 } })) });

void suite("Kill replies before the exits it causes", () => {
  const ctx = useService();
  let runc!: ReturnType<typeof slowRunc>;

  async function running(id: string, args: string[]): Promise<number> {
    runc ??= slowRunc(ctx.root.dir);
    runc.killWaitsExit(true);
    const b = makeBundle(ctx.root.dir, id, args);
    await ctx.h.call("Create", "CreateTaskRequest", "CreateTaskResponse", { id, bundle: b.bundle, stdout: b.stdout, options: runc.options });
    const { pid } = await ctx.h.call<{ pid: number }>("Start", "StartRequest", "StartResponse", { id });
    return pid;
  }

  /** The timeline since `mark`, exits named by process id. */
  function since(mark: number): string[] {
    const exits = ctx.h.events.filter((e) => e.topic === "/tasks/exit").map((e) => E.TaskExit.decode(e.value).id);
    let n = ctx.h.timeline.slice(0, mark).filter((t) => t === "/tasks/exit").length;
    return ctx.h.timeline.slice(mark).map((t) => (t === "/tasks/exit" ? `exit ${exits[n++]}` : t));
  }

  async function deleteTask(id: string) {
    await ctx.h.call("Wait", "WaitRequest", "WaitResponse", { id });
    await ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id });
  }

  void test("SIGKILL of the init: the reply, then the exit", async () => {
    const pid = await running("k1", ["sleep", "100000"]);
    const waited = ctx.h.call<Waited>("Wait", "WaitRequest", "WaitResponse", { id: "k1" });
    const mark = ctx.h.timeline.length;
    await ctx.h.call("Kill", "KillRequest", null, { id: "k1", signal: 9 });
    assert.equal(existsSync(`/proc/${pid}`), false, "the init was reaped before runc kill returned");
    assert.equal((await waited).exitStatus, 137);
    assert.deepEqual(since(mark).filter((t) => t !== "reply Wait"), ["reply Kill", "exit k1"]);
    await deleteTask("k1");
  });

  void test("SIGTERM that the init handles and exits on later: the reply, then the exit", async () => {
    await running("k2", ["sh", "-c", "trap 'exit 3' TERM; sleep 100000 & wait"]);
    const mark = ctx.h.timeline.length;
    await ctx.h.call("Kill", "KillRequest", null, { id: "k2", signal: 15 });
    const w = await ctx.h.call<Waited>("Wait", "WaitRequest", "WaitResponse", { id: "k2" });
    assert.equal(w.exitStatus, 3);
    assert.deepEqual(since(mark), ["reply Kill", "exit k2", "reply Wait"]);
    await ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id: "k2" });
  });

  void test("Kill with all while an exec runs: the reply, then the exec's exit, then the init's", async () => {
    await running("k3", ["sleep", "100000"]);
    await ctx.h.call("Exec", "ExecProcessRequest", null, { id: "k3", execId: "e", spec: spec(["sleep", "100000"]) });
    await ctx.h.call("Start", "StartRequest", "StartResponse", { id: "k3", execId: "e" });
    const mark = ctx.h.timeline.length;
    await ctx.h.call("Kill", "KillRequest", null, { id: "k3", signal: 9, all: true });
    await waitFor(() => since(mark).includes("exit k3"), { what: "the init exit" });
    assert.deepEqual(since(mark), ["reply Kill", "exit e", "exit k3"]);
    await ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id: "k3", execId: "e" });
    await deleteTask("k3");
  });

  void test("a Kill that arrives while the exit is already on its way is answered first too", async () => {
    // The first Kill's runc kill waits for the reap; a second Kill (NotFound or not) is in flight meanwhile.
    await running("k4", ["sleep", "100000"]);
    const mark = ctx.h.timeline.length;
    const kill = () => ctx.h.call("Kill", "KillRequest", null, { id: "k4", signal: 9 })
      .then(() => "OK", (e: Error & { code?: string }) => `${e.code}: ${e.message}`);
    // Either may find the container gone already: containerd treats NotFound as success.
    for (const r of await Promise.all([kill(), kill()])) assert.ok(r === "OK" || r.startsWith("NotFound"), `Kill: ${r}`);
    await waitFor(() => since(mark).includes("exit k4"), { what: "the init exit" });
    assert.deepEqual(since(mark), ["reply Kill", "reply Kill", "exit k4"]);
    await deleteTask("k4");
    assert.ok(runc.calls().some((c) => / kill /.test(` ${c} `)), "runc went through the wrapper");
  });
});
