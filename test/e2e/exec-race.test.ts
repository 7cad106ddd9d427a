// Exec around the init's exit, through ctr on every containerd version (issue 8, item 2). runc is
// test/fixtures/slow-runc, whose `exec` waits until the test releases it: exec e1 is starting when the init is
// killed, so the init's exit is held back; exec e2 is then asked for. As in runc-v2, e2's create is accepted
// and its Start refused (FailedPrecondition); once e1's start ends, the init's exit is published, and the
// container is deleted with nothing left behind.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { BUSYBOX_REF, RUNTIME, assertNoLeftovers, ctrOk, deleteTask, describe, perVersion, taskStatus, waitStatus } from "../helpers/ctr.js";
import type { Containerd } from "../helpers/containerd.js";
import { REPO_ROOT } from "../helpers/image.js";
import { waitFor } from "../helpers/wait.js";

const SUITES = { "1.6": "bookworm", "1.7": "trixie", "2.1": "sid" } as const;

/** `ctr events` in the background: the topics (with their JSON) seen so far, in order. */
function events(c: Containerd) {
  const ctr = path.join(REPO_ROOT, ".deps", "containerd", SUITES[c.version], "usr", "bin", "ctr");
  const p = spawn(ctr, ["--address", c.address, "-n", c.namespace, "events"], { stdio: ["ignore", "pipe", "ignore"] });
  let out = "";
  p.stdout.setEncoding("utf8").on("data", (d: string) => { out += d; });
  const lines = (id: string) => out.split("\n").filter((l) => l.includes(id)).map((l) => {
    const topic = /\s(\/tasks\/[a-z-]+)\s/.exec(l)?.[1] ?? "?";
    const exec = /"exec_id":"([^"]+)"/.exec(l)?.[1] ?? /"id":"(e\d)"/.exec(l)?.[1];
    return exec ? `${topic} ${exec}` : topic;
  }).filter((t) => t.startsWith("/tasks/"));
  return { lines, stop: () => p.kill("SIGKILL") };
}

perVersion("exec while the init's exit is held back", (get) => {
  void test("e2's create is accepted and its Start refused, the init exit follows e1's failed start, nothing is left", async () => {
    const c = get();
    const id = "race1";
    const dir = path.join(c.dir, "slow-runc");
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    symlinkSync(path.join(REPO_ROOT, "test", "fixtures", "slow-runc"), path.join(dir, "runc"));
    const cfg = path.join(c.dir, "slow-runc.toml");
    writeFileSync(cfg, `BinaryName = "${path.join(dir, "runc")}"\n`);
    const ev = events(c);
    try {
      await ctrOk(c, ["run", "--runtime", RUNTIME, "--runtime-config-path", cfg, "-d", BUSYBOX_REF, id, "sleep", "100000"]);
      await waitStatus(c, id, "RUNNING");
      writeFileSync(path.join(dir, "hold-exec"), "");
      const e1 = c.ctr(["task", "exec", "--exec-id", "e1", id, "sleep", "100000"], { timeoutMs: 60_000 });
      await waitFor(() => existsSync(path.join(dir, "exec-waiting")), { what: "runc exec of e1 to be waiting" });
      await ctrOk(c, ["task", "kill", "-s", "KILL", id]);
      // The init is dead and reaped, but its exit is held back while e1 starts: the task still shows RUNNING.
      const pids = await ctrOk(c, ["task", "ls"]);
      const pid = Number(pids.stdout.split("\n").find((l) => l.startsWith(`${id} `))?.trim().split(/\s+/)[1]);
      await waitFor(() => !existsSync(`/proc/${pid}`), { what: `init ${pid} to be reaped` });
      assert.equal(await taskStatus(c, id), "RUNNING");

      const e2 = await c.ctr(["task", "exec", "--exec-id", "e2", id, "true"]);
      assert.notEqual(e2.code, 0, describe(c, "ctr task exec e2", e2));
      assert.match(e2.stderr, /Cannot start exec "e2".*init process is not running/, describe(c, "ctr task exec e2", e2));

      rmSync(path.join(dir, "hold-exec"));
      const r1 = await e1;
      assert.notEqual(r1.code, 0, describe(c, "ctr task exec e1", r1));
      assert.match(r1.stderr, /Cannot start exec "e1".*init process is not running/, describe(c, "ctr task exec e1", r1));

      await waitStatus(c, id, "STOPPED");
      assert.equal(await deleteTask(c, id), 137);
      await ctrOk(c, ["container", "delete", id]);
      await waitFor(() => ev.lines(id).includes("/tasks/delete"), { what: `the delete event in ${JSON.stringify(ev.lines(id))}` });
      const seen = ev.lines(id).filter((t) => !t.startsWith("/tasks/create") && !t.startsWith("/tasks/start"));
      // ctr deletes e2 after its failed Start (and e1 likewise); containerd publishes no event for that.
      assert.deepEqual(seen, ["/tasks/exec-added e1", "/tasks/exec-added e2", "/tasks/exit", "/tasks/delete"]);
    } finally {
      ev.stop();
    }
    await assertNoLeftovers(c, id);
  });
});
