// `ctr task exec` through the runtime under test: output and exit codes, id reuse rules, refusals, many
// execs at once, stdin with CloseIO, and the rule that a container's exit is published after its execs'.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { test } from "node:test";
import type { Containerd } from "../helpers/containerd.js";
import { assertNoLeftovers, ctrOk, deleteTask, describe, perVersion, runArgs, waitStatus } from "../helpers/ctr.js";
import { REPO_ROOT } from "../helpers/image.js";
import { waitFor } from "../helpers/wait.js";

const N = 100;
/** How many `ctr task exec` run at once (two cores here; 100 at once measured fine too). */
const PARALLEL = Number(process.env.E2E_EXEC_PARALLEL ?? 100);
const SUITES = { "1.6": "bookworm", "1.7": "trixie", "2.1": "sid" } as const;

/** `ctr events` as a running process whose output is collected until stop(). */
function ctrEvents(c: Containerd): { lines: () => string[]; stop: () => void; proc: ChildProcess } {
  const ctr = path.join(REPO_ROOT, ".deps", "containerd", SUITES[c.version], "usr", "bin", "ctr");
  const proc = spawn(ctr, ["--address", c.address, "events"], { stdio: ["ignore", "pipe", "ignore"] });
  let out = "";
  proc.stdout.setEncoding("utf8").on("data", (d: string) => { out += d; });
  return { lines: () => out.split("\n").filter((l) => l.includes(c.namespace)), stop: () => proc.kill("SIGKILL"), proc };
}

/** Runs `fn(i)` for i in [0, n) with at most `limit` in flight; results in index order. */
async function bounded<T>(n: number, limit: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array<T>(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
  return out;
}

perVersion("ctr task exec", (get) => {
  void test("prints both streams and exits with the exec's status", async () => {
    const c = get();
    await ctrOk(c, runArgs("ex", ["sleep", "100000"], { detach: true }));
    await waitStatus(c, "ex", "RUNNING");
    const r = await c.ctr(["task", "exec", "--exec-id", "e1", "ex", "sh", "-c", "echo out; echo err >&2; exit 4"]);
    assert.equal(r.stdout, "out\n", describe(c, "ctr task exec", r));
    assert.equal(r.stderr, "err\n", describe(c, "ctr task exec", r));
    assert.equal(r.code, 4, describe(c, "ctr task exec", r));
  });

  void test("refuses a duplicate exec id with AlreadyExists", async () => {
    const c = get();
    await ctrOk(c, ["task", "exec", "-d", "--exec-id", "dup", "ex", "sleep", "100000"]);
    const r = await c.ctr(["task", "exec", "--exec-id", "dup", "ex", "true"]);
    assert.notEqual(r.code, 0, describe(c, "second exec with id dup", r));
    assert.match(r.stderr, /already exists/, describe(c, "second exec with id dup", r));
    await ctrOk(c, ["task", "kill", "--exec-id", "dup", "-s", "SIGKILL", "ex"]);
  });

  void test("feeds stdin to the exec and ends it on EOF (CloseIO)", async () => {
    const c = get();
    const input = Array.from({ length: 2000 }, (_, i) => `line ${i}`).join("\n") + "\n";
    const r = await c.ctr(["task", "exec", "--exec-id", "cat", "ex", "cat"], { input, timeoutMs: 20_000 });
    assert.equal(r.code, 0, describe(c, "ctr task exec cat", { ...r, stdout: r.stdout.slice(0, 200) }));
    assert.equal(r.stdout, input);
    // Not tested: an empty stdin. ctr reads EOF before it has set up its CloseIO callback and never sends
    // CloseIO; the exec then waits for input forever, with containerd-shim-runc-v2 just the same.
  });

  void test(`runs ${N} concurrent execs, each with its own exit code`, { timeout: 120_000 }, async () => {
    const c = get();
    const results = await bounded(N, PARALLEL, (i) =>
      c.ctr(["task", "exec", "--exec-id", `par${i}`, "ex", "sh", "-c", `echo o${i}; exit ${i}`], { timeoutMs: 90_000 }));
    results.forEach((r, i) => {
      assert.equal(r.code, i, describe(c, `exec par${i}`, r));
      assert.equal(r.stdout, `o${i}\n`, describe(c, `exec par${i}`, r));
    });
    await ctrOk(c, ["task", "kill", "-s", "SIGKILL", "ex"]);
    await waitStatus(c, "ex", "STOPPED");
    assert.equal(await deleteTask(c, "ex"), 137);
    await ctrOk(c, ["container", "delete", "ex"]);
    await assertNoLeftovers(c, "ex");
  });

  void test("refuses exec into a stopped container with FailedPrecondition", async () => {
    const c = get();
    await ctrOk(c, runArgs("stopped", ["true"], { detach: true }));
    await waitStatus(c, "stopped", "STOPPED");
    const r = await c.ctr(["task", "exec", "--exec-id", "late", "stopped", "true"]);
    assert.notEqual(r.code, 0, describe(c, "exec into a stopped task", r));
    assert.match(r.stderr, /stopped state|not running|failed precondition/i, describe(c, "exec into a stopped task", r));
    assert.equal(await deleteTask(c, "stopped"), 0);
    await ctrOk(c, ["container", "delete", "stopped"]);
  });

  // The init waits (trap + wait) for USR1, which the exec sends once it is running; the init's exit then
  // kills the exec (private pid namespace), and both exits arrive together. The exec's must come first.
  void test("publishes the container's exit after the exits of its execs", async () => {
    const c = get();
    const events = ctrEvents(c);
    try {
      await ctrOk(c, runArgs("order", ["sh", "-c", "trap 'exit 5' USR1; touch /ready; while :; do sleep 100000 & wait $!; done"], { detach: true }));
      await waitStatus(c, "order", "RUNNING");
      const r = await c.ctr(["task", "exec", "--exec-id", "victim", "order", "sh", "-c",
        "while [ ! -f /ready ]; do :; done; kill -USR1 1; exec sleep 100000"], { timeoutMs: 30_000 });
      assert.equal(r.code, 137, describe(c, "exec killed with its container", r));
      await waitStatus(c, "order", "STOPPED");
      const exits = await waitFor(() => {
        const l = events.lines().filter((x) => x.includes("/tasks/exit") && x.includes('"order"'));
        return l.length >= 2 ? l : undefined;
      }, { timeoutMs: 10_000, what: "two /tasks/exit events of container order" });
      assert.match(exits[0]!, /"id":"victim"/, exits.join("\n"));
      assert.match(exits[1]!, /"id":"order".*"exit_status":5/, exits.join("\n"));
    } finally {
      events.stop();
    }
    assert.equal(await deleteTask(c, "order"), 5);
    await ctrOk(c, ["container", "delete", "order"]);
    await assertNoLeftovers(c, "order");
  });
});
