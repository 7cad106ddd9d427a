// Signals sent with `ctr task kill` end a long-running container with the matching exit status.
import assert from "node:assert/strict";
import { test } from "node:test";
import { assertNoLeftovers, ctrOk, deleteTask, describe, perVersion, runArgs, waitStatus } from "../helpers/ctr.js";

// A pid-namespace init ignores signals it has no handler for, so SIGTERM needs a trap (as real images do);
// SIGKILL always kills, and the shim must report it as 128 + 9.
const TRAP_TERM = ["sh", "-c", "trap 'exit 143' TERM; sleep 1000 & wait"];

perVersion("ctr task kill", (get) => {
  void test("SIGTERM ends a trapping container with 143", async () => {
    const c = get();
    await ctrOk(c, runArgs("term", TRAP_TERM, { detach: true }));
    await waitStatus(c, "term", "RUNNING");
    await ctrOk(c, ["task", "kill", "-s", "SIGTERM", "term"]);
    await waitStatus(c, "term", "STOPPED");
    assert.equal(await deleteTask(c, "term"), 143);
    await ctrOk(c, ["container", "delete", "term"]);
    await assertNoLeftovers(c, "term");
  });

  void test("SIGKILL ends a container with 137", async () => {
    const c = get();
    await ctrOk(c, runArgs("kill9", ["sleep", "1000"], { detach: true }));
    await waitStatus(c, "kill9", "RUNNING");
    await ctrOk(c, ["task", "kill", "-s", "SIGKILL", "kill9"]);
    await waitStatus(c, "kill9", "STOPPED");
    assert.equal(await deleteTask(c, "kill9"), 137);
    await ctrOk(c, ["container", "delete", "kill9"]);
    await assertNoLeftovers(c, "kill9");
  });

  void test("an attached ctr run reports 137 when its task is killed", async () => {
    const c = get();
    const running = c.ctr(runArgs("attached", ["sleep", "1000"]));
    await waitStatus(c, "attached", "RUNNING");
    await ctrOk(c, ["task", "kill", "-s", "SIGKILL", "attached"]);
    const r = await running;
    assert.equal(r.code, 137, describe(c, "attached ctr run", r));
    await assertNoLeftovers(c, "attached");
  });
});
