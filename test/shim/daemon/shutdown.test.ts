import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { suite, test } from "node:test";
import { Logger, MemorySink } from "../../../src/log.js";
import { adjustOomScore, cgroupProcsFiles, joinCgroup } from "../../../src/shim/manager/placement.js";
import { Shutdown } from "../../../src/shim/daemon/shutdown.js";
import { tempDir } from "../../helpers/shim.js";

void suite("Shutdown", () => {
  void test("runs callbacks last-registered first, once, and aborts its signal", async () => {
    const sd = new Shutdown(new Logger());
    const order: string[] = [];
    sd.onStop("a", () => void order.push("a"));
    sd.onStop("b", async () => {
      await Promise.resolve();
      order.push("b");
    });
    assert.equal(sd.signal.aborted, false);
    const p1 = sd.stop("test");
    const p2 = sd.stop("again");
    assert.equal(sd.signal.aborted, true);
    assert.equal(sd.requested, true);
    await Promise.all([p1, p2]);
    assert.deepEqual(order, ["b", "a"]);
  });

  void test("goes on after a step that throws or outlives its budget", async () => {
    const sink = new MemorySink();
    const sd = new Shutdown(new Logger(sink));
    const order: string[] = [];
    let sawAbort = false;
    sd.onStop("last", () => void order.push("last"));
    sd.onStop("hang", (signal) => new Promise<void>(() => signal.addEventListener("abort", () => (sawAbort = true))), 20);
    sd.onStop("throw", () => {
      throw new Error("boom");
    });
    await sd.stop();
    assert.deepEqual(order, ["last"]);
    assert.equal(sawAbort, true);
    assert.ok(sink.lines.some((l) => l.includes("step=throw") && l.includes("boom")));
    assert.ok(sink.lines.some((l) => l.includes("step=hang") && l.includes("Timed out")));
  });
});

void suite("placement", () => {
  void test("finds cgroup.procs on cgroup v2", async (t) => {
    const root = await tempDir(t, "shim-cg2-");
    writeFileSync(path.join(root, "cgroup.controllers"), "cpu memory");
    assert.deepEqual(cgroupProcsFiles("/pods/p1", root), [path.join(root, "pods/p1/cgroup.procs")]);
  });

  void test("writes the pid into every v1 controller that has the path", async (t) => {
    const root = await tempDir(t, "shim-cg1-");
    for (const c of ["memory", "pids"]) {
      mkdirSync(path.join(root, c, "pods/p1"), { recursive: true });
      writeFileSync(path.join(root, c, "pods/p1/cgroup.procs"), "");
    }
    mkdirSync(path.join(root, "cpu"));
    assert.deepEqual(joinCgroup(1234, "/pods/p1", root), []);
    assert.equal(readFileSync(path.join(root, "memory/pods/p1/cgroup.procs"), "utf8"), "1234");
    assert.equal(readFileSync(path.join(root, "pids/pods/p1/cgroup.procs"), "utf8"), "1234");
    assert.match(joinCgroup(1, "/nope", root)[0] ?? "", /not found/);
  });

  void test("sets a child's oom_score_adj to its parent's + 1", async (t) => {
    const child = spawn("sleep", ["30"], { stdio: "ignore" });
    t.after(() => child.kill("SIGKILL"));
    await new Promise((resolve) => child.once("spawn", resolve));
    const pid = child.pid ?? 0;
    const ours = Number(readFileSync("/proc/self/oom_score_adj", "utf8"));
    const err = adjustOomScore(pid, process.pid);
    if (ours >= 1000) assert.equal(err, undefined);
    else {
      assert.equal(err, undefined);
      assert.equal(Number(readFileSync(`/proc/${pid}/oom_score_adj`, "utf8")), ours + 1);
    }
  });

  void test("reports, never throws, when the parent is unknown", () => {
    assert.match(adjustOomScore(process.pid, 0x7ffffffe) ?? "", /Cannot set oom_score_adj/);
  });
});
