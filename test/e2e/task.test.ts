// A running container can be inspected, exec'd into, paused and resumed through ctr.
import assert from "node:assert/strict";
import { test } from "node:test";
import { assertNoLeftovers, ctrOk, deleteTask, describe, perVersion, runArgs, waitStatus } from "../helpers/ctr.js";

// Reported as TODO (still run, shown in the summary) until our shim implements Stats (src/task/service.ts).

perVersion("ctr task on a running container", (get) => {
  void test("exec runs a process with its own output and exit status", async () => {
    const c = get();
    await ctrOk(c, runArgs("ex", ["sleep", "1000"], { detach: true }));
    await waitStatus(c, "ex", "RUNNING");
    const r = await c.ctr(["task", "exec", "--exec-id", "e1", "ex", "sh", "-c", "echo from-exec; exit 4"]);
    assert.equal(r.stdout, "from-exec\n", describe(c, "ctr task exec", r));
    assert.equal(r.code, 4, describe(c, "ctr task exec", r));
    const again = await c.ctr(["task", "exec", "--exec-id", "e1", "ex", "true"]);
    assert.equal(again.code, 0, describe(c, "ctr task exec reusing the id", again));
  });

  void test("ps lists the container's processes", async () => {
    const c = get();
    const r = await ctrOk(c, ["task", "ps", "ex"]);
    const pids = r.stdout.split("\n").slice(1).filter((l) => /^\s*\d+/.test(l));
    assert.ok(pids.length >= 1, describe(c, "ctr task ps", r));
  });

  void test("pause and resume change the task status", async () => {
    const c = get();
    await ctrOk(c, ["task", "pause", "ex"]);
    await waitStatus(c, "ex", "PAUSED");
    await ctrOk(c, ["task", "resume", "ex"]);
    await waitStatus(c, "ex", "RUNNING");
  });

  void test("metrics reports the container's cgroup", async () => {
    const c = get();
    const r = await ctrOk(c, ["task", "metrics", "ex"]);
    assert.match(r.stdout, /ID\s+TIMESTAMP/, describe(c, "ctr task metrics", r));
  });

  void test("kill and delete end it cleanly", async () => {
    const c = get();
    await ctrOk(c, ["task", "kill", "-s", "SIGKILL", "ex"]);
    await waitStatus(c, "ex", "STOPPED");
    assert.equal(await deleteTask(c, "ex"), 137);
    await ctrOk(c, ["container", "delete", "ex"]);
    await assertNoLeftovers(c, "ex");
  });
});
