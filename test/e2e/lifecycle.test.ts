// Pause/Resume (with their events), Pids with exec ids, Update of the memory limit and the errors
// containerd expects, through ctr on every containerd version.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { RUNTIME, ctrOk, deleteTask, describe, perVersion, runArgs, waitStatus, assertNoLeftovers } from "../helpers/ctr.js";
import { REPO_ROOT } from "../helpers/image.js";
import type { Containerd } from "../helpers/containerd.js";
import { waitFor } from "../helpers/wait.js";
import { shimSocketPath } from "../helpers/containerd.js";
import { Client } from "../../src/ttrpc/index.js";
import { containerd, google } from "../../src/gen/task.js";

const T = containerd.task.v2;
// The Go runc shim of 2.1 serves only v3; ours serves both.
const TASK_SERVICE = { "1.6": "containerd.task.v2.Task", "1.7": "containerd.task.v2.Task", "2.1": "containerd.task.v3.Task" } as const;

const OURS = RUNTIME === "io.containerd.ts.v2";
const SUITES = { "1.6": "bookworm", "1.7": "trixie", "2.1": "sid" } as const;

/** `ctr events` running in the background; `until()` waits (with a deadline) for lines matching all patterns. */
function events(c: Containerd) {
  const ctr = path.join(REPO_ROOT, ".deps", "containerd", SUITES[c.version], "usr", "bin", "ctr");
  const p = spawn(ctr, ["--address", c.address, "-n", c.namespace, "events"], { stdio: ["ignore", "pipe", "ignore"] });
  let out = "";
  p.stdout.setEncoding("utf8").on("data", (d: string) => { out += d; });
  return {
    until: (patterns: RegExp[]) => waitFor(() => patterns.every((re) => re.test(out)), { timeoutMs: 10_000, what: `events ${patterns.join(", ")} in:\n${out}` }),
    stop: () => p.kill("SIGKILL"),
  };
}

perVersion("pause, resume, pids, update and error codes", (get) => {
  void test("pause and resume publish /tasks/paused and /tasks/resumed and show PAUSED", async () => {
    const c = get();
    const ev = events(c);
    try {
      await ctrOk(c, runArgs("lc", ["sleep", "1000"], { detach: true }));
      // The start event proves the event stream was live before we pause.
      await ev.until([/\/tasks\/start\s.*lc/]);
      await ctrOk(c, ["task", "pause", "lc"]);
      await waitStatus(c, "lc", "PAUSED");
      await ctrOk(c, ["task", "resume", "lc"]);
      await waitStatus(c, "lc", "RUNNING");
      await ev.until([/\/tasks\/paused\s.*lc/, /\/tasks\/resumed\s.*lc/]);
    } finally {
      ev.stop();
    }
  });

  void test("pausing a paused task and deleting a running one are FailedPrecondition", { skip: !OURS && "our messages" }, async () => {
    const c = get();
    await ctrOk(c, ["task", "pause", "lc"]);
    try {
      const again = await c.ctr(["task", "pause", "lc"]);
      assert.notEqual(again.code, 0, describe(c, "second pause", again));
      // 1.6/1.7's ctr prints the gRPC code after the message; 2.1's prints the message alone.
      const suffix = c.version === "2.1" ? "" : ": failed precondition";
      assert.match(again.stderr, new RegExp(`Cannot pause task "lc" in paused state${suffix}`), describe(c, "second pause", again));
    } finally {
      await ctrOk(c, ["task", "resume", "lc"]);
    }
    // containerd's client refuses this itself (FailedPrecondition) before asking the shim.
    const del = await c.ctr(["task", "delete", "lc"]);
    assert.notEqual(del.code, 0, describe(c, "delete of a running task", del));
    assert.match(del.stderr, /must be stopped|running state/, describe(c, "delete of a running task", del));
  });

  void test("ps lists the init and an exec's pid tagged with its exec id", async () => {
    const c = get();
    await ctrOk(c, ["task", "exec", "-d", "--exec-id", "sleeper", "lc", "sleep", "1000"]);
    const r = await ctrOk(c, ["task", "ps", "lc"]);
    const rows = r.stdout.split("\n").slice(1).filter((l) => /^\s*\d+/.test(l));
    assert.equal(rows.length, 2, describe(c, "ctr task ps", r));
    const tagged = rows.filter((l) => /sleeper/.test(l));
    assert.equal(tagged.length, 1, describe(c, "ctr task ps (exec id in INFO)", r));
  });

  // No ctr of these versions has `task update`, so the LinuxResources Any goes to the shim's socket directly.
  void test("Update with a memory limit changes the cgroup's memory.limit_in_bytes", async () => {
    const c = get();
    const update = async (limit: number) => {
      const client = await Client.connect(shimSocketPath(c, c.namespace, "lc"));
      try {
        const resources = { typeUrl: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources", value: Buffer.from(JSON.stringify({ memory: { limit } })) };
        await client.callTyped(TASK_SERVICE[c.version], "Update", T.UpdateTaskRequest, { id: "lc", resources }, google.protobuf.Empty);
      } finally {
        client.close();
      }
    };
    await update(96 << 20);
    const file = path.join("/sys/fs/cgroup/memory", c.namespace, "lc", "memory.limit_in_bytes");
    assert.equal(readFileSync(file, "utf8").trim(), String(96 << 20));
    // runc's own words reach the caller (ours: "runc update failed: <runc's log message>").
    const expected = OURS ? /^runc update failed: .*unable to set memory limit to 4096/ : /unable to set memory limit to 4096/;
    await assert.rejects(update(4096), (err: Error) => expected.test(err.message) || assert.fail(err.message));
  });

  void test("a kill of an exited task is NotFound and delete then reports its status", async () => {
    const c = get();
    await ctrOk(c, ["task", "kill", "-s", "SIGKILL", "lc"]);
    await waitStatus(c, "lc", "STOPPED");
    const again = await c.ctr(["task", "kill", "-s", "SIGKILL", "lc"]);
    assert.notEqual(again.code, 0, describe(c, "kill of a stopped task", again));
    // 2.1's ctr prints only the message; 1.6/1.7 add the code (": not found").
    assert.match(again.stderr, c.version === "2.1" ? /process already finished/ : /not found/, describe(c, "kill of a stopped task", again));
    const pause = await c.ctr(["task", "pause", "lc"]);
    assert.notEqual(pause.code, 0, describe(c, "pause of a stopped task", pause));
    if (OURS) assert.match(pause.stderr, /Cannot pause task "lc" in stopped state/, describe(c, "pause of a stopped task", pause));
    assert.equal(await deleteTask(c, "lc"), 137);
    await ctrOk(c, ["container", "delete", "lc"]);
    await assertNoLeftovers(c, "lc");
  });
});
