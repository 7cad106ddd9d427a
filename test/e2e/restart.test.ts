// A running container survives a containerd crash and restart, and can then be killed and deleted.
import assert from "node:assert/strict";
import { test } from "node:test";
import { containerProcesses, processesUnder } from "../helpers/containerd.js";
import { assertNoLeftovers, ctrOk, deleteTask, describe, perVersion, runArgs, waitStatus } from "../helpers/ctr.js";

perVersion("containerd restart", (get) => {
  void test("keeps a running container listed and controllable after kill -9 and restart", async () => {
    const c = get();
    await ctrOk(c, runArgs("survivor", ["sleep", "1000"], { detach: true }));
    await waitStatus(c, "survivor", "RUNNING");
    await c.kill9();
    assert.ok(processesUnder(c.dir).length > 0, "the shim should outlive containerd");
    assert.ok(containerProcesses(c.namespace, "survivor").length > 0, "the container should outlive containerd");
    await c.restart();
    await waitStatus(c, "survivor", "RUNNING");
    await ctrOk(c, ["task", "kill", "-s", "9", "survivor"]);
    await waitStatus(c, "survivor", "STOPPED");
    assert.equal(await deleteTask(c, "survivor"), 137);
    await ctrOk(c, ["container", "delete", "survivor"]);
    await assertNoLeftovers(c, "survivor");
  });

  void test("runs new containers after the restart", async () => {
    const c = get();
    const r = await c.ctr(runArgs("after", ["sh", "-c", "echo again; exit 5"]));
    assert.equal(r.stdout, "again\n", describe(c, "ctr run after restart", r));
    assert.equal(r.code, 5, describe(c, "ctr run after restart", r));
    await assertNoLeftovers(c, "after");
  });
});
