// Checkpoint through ctr (`ctr task checkpoint` and `ctr container checkpoint --task`, which all three
// versions offer; containerd pauses the task around the call). CRIU 3.17 cannot run on this VM's
// kernel (its vDSO probe fails, `criu check` fails), so here the shim must answer FailedPrecondition
// with CRIU's reason and keep <bundle>/criu-dump.log; where CRIU works the checkpoint must succeed.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { RUNTIME, assertNoLeftovers, ctrOk, deleteTask, describe, perVersion, runArgs, taskStatus, waitStatus } from "../helpers/ctr.js";

const OURS = RUNTIME === "io.containerd.ts.v2";
const CRIU_WORKS = spawnSync("criu", ["check"], { stdio: "ignore" }).status === 0;

perVersion("checkpoint", (get) => {
  void test(`ctr task checkpoint ${CRIU_WORKS ? "writes a checkpoint image" : "fails clearly because CRIU cannot run here"}`, async () => {
    const c = get();
    await ctrOk(c, runArgs("ck", ["sleep", "1000"], { detach: true }));
    await waitStatus(c, "ck", "RUNNING");
    const r = await c.ctr(["task", "checkpoint", "ck"]);
    if (CRIU_WORKS) {
      assert.equal(r.code, 0, describe(c, "ctr task checkpoint", r));
      assert.match(r.stdout, /sha256:[0-9a-f]{64}/, describe(c, "ctr task checkpoint", r));
    } else {
      assert.notEqual(r.code, 0, describe(c, "ctr task checkpoint", r));
      if (OURS) {
        assert.match(r.stderr, /Cannot checkpoint task "ck": criu cannot run on this host: vdso: .+ \(runc checkpoint failed: criu failed: .+; log: \S+\/criu-dump\.log\)/, describe(c, "ctr task checkpoint", r));
        const bundle = path.join(c.state, "io.containerd.runtime.v2.task", c.namespace, "ck");
        assert.ok(existsSync(path.join(bundle, "criu-dump.log")), "criu-dump.log kept in the bundle");
        if (c.version !== "2.1") assert.match(r.stderr, /failed precondition/, describe(c, "ctr task checkpoint", r));
      }
    }
    // containerd paused the task around the call and resumed it; it is still running.
    assert.equal(await taskStatus(c, "ck"), "RUNNING");
  });

  void test("ctr container checkpoint --task reaches the shim's Checkpoint as well", async () => {
    const c = get();
    const r = await c.ctr(["container", "checkpoint", "--task", "ck", "example.com/ck:1"]);
    if (CRIU_WORKS) assert.equal(r.code, 0, describe(c, "ctr container checkpoint", r));
    else {
      assert.notEqual(r.code, 0, describe(c, "ctr container checkpoint", r));
      if (OURS) assert.match(r.stderr, /criu cannot run on this host/, describe(c, "ctr container checkpoint", r));
    }
    assert.equal(await taskStatus(c, "ck"), "RUNNING");
    await ctrOk(c, ["task", "kill", "-s", "SIGKILL", "ck"]);
    await waitStatus(c, "ck", "STOPPED");
    assert.equal(await deleteTask(c, "ck"), 137);
    await ctrOk(c, ["container", "delete", "ck"]);
    await assertNoLeftovers(c, "ck");
  });
});
