// A runc that fails or hangs (issue 10, item 3), through ctr on 1.6/1.7/2.1. Every container of the group runs
// on one shim daemon with test/fixtures/fault-runc as its runc (BinaryName); a fault is set for one call at a
// time while s1 keeps running on the same daemon. A failing runc must give an error naming runc's message; a
// hanging one an error once the caller's deadline passes (`ctr --timeout`, sent as the ttrpc deadline), with
// the hung runc killed. Either way the daemon (same pid) keeps serving s1 and nothing of the failed call is left.
// exec-race.test.ts and cri-churn.test.ts use test/fixtures/slow-runc to order races, not to inject faults.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { test, type TestContext } from "node:test";
import { mountsUnder, type Containerd, type CtrResult } from "../helpers/containerd.js";
import { assertNoLeftovers, ctrOk, deleteTask, describe, perVersion, taskStatus, waitStatus } from "../helpers/ctr.js";
import { FaultRunc, OURS, groupRunArgs, runcList } from "../helpers/faults.js";
import { alive } from "../helpers/output.js";
import { shimDaemons } from "../helpers/cri.js";
import { waitFor } from "../helpers/wait.js";

const GROUP = "runcfaults";
/** The caller's deadline for calls whose runc hangs. */
const DEADLINE_S = 2;

perVersion("a runc that fails or hangs", (get, v) => {
  let runc: FaultRunc;
  let daemon = 0;
  const root = (c: Containerd) => path.join("/run/containerd/runc", c.namespace);
  const run = (c: Containerd, id: string, extra: string[] = []) =>
    c.ctr([...extra, ...groupRunArgs(id, ["sleep", "100000"], { group: GROUP, runc, detach: true })], { timeoutMs: 60_000 });

  /** Nothing of container `id` is left: runc container, bundle, mounts (the group's daemon stays). */
  async function gone(c: Containerd, id: string): Promise<void> {
    const bundle = path.join(c.state, "io.containerd.runtime.v2.task", c.namespace, id);
    await waitFor(async () => !(await runcList(root(c))).includes(id) && !existsSync(bundle) && mountsUnder(bundle).length === 0,
      { what: `nothing of ${id} left (runc container, bundle, mounts)` });
  }

  /** s1 still runs on the same daemon and answers an exec. */
  async function stillServing(c: Containerd, what: string): Promise<void> {
    assert.equal(await taskStatus(c, "s1"), "RUNNING", `${what}: s1`);
    const r = await ctrOk(c, ["task", "exec", "--exec-id", `ok-${Date.now()}`, "s1", "echo", "ok"]);
    assert.equal(r.stdout, "ok\n", `${what}: exec in s1`);
    assert.deepEqual(shimDaemons(c), [daemon], `${what}: the same shim daemon`);
  }

  /** Runs `args` with a ctr deadline; returns the result and how long it took. */
  async function timed(c: Containerd, args: string[]): Promise<{ r: CtrResult; ms: number }> {
    const t0 = performance.now();
    const r = await c.ctr(["--timeout", `${DEADLINE_S}s`, ...args], { timeoutMs: 60_000 });
    return { r, ms: Math.round(performance.now() - t0) };
  }

  void test("setup: s1 runs on the group's daemon through the wrapper", async () => {
    const c = get();
    runc = new FaultRunc(path.join(c.dir, "fault-runc"));
    const r = await run(c, "s1");
    assert.equal(r.code, 0, describe(c, "ctr run s1", r));
    await waitStatus(c, "s1", "RUNNING");
    const d = shimDaemons(c);
    assert.equal(d.length, 1, `one daemon: ${JSON.stringify(d)}`);
    daemon = d[0]!;
    assert.ok(runc.calls().some((l) => / create .* s1$/.test(l)), "runc ran through the wrapper");
  });

  void test("a failing runc create, start, exec, kill or delete gives runc's message, and the shim goes on", async () => {
    const c = get();
    for (const verb of ["create", "start"]) {
      runc.set("fail", verb, `injected ${verb} failure for ${v}`);
      const id = `f-${verb}`;
      const r = await run(c, id);
      runc.clear("fail", verb);
      assert.notEqual(r.code, 0, describe(c, `ctr run with a failing runc ${verb}`, r));
      assert.match(r.stderr, new RegExp(`injected ${verb} failure for ${v}`), describe(c, `ctr run with a failing runc ${verb}`, r));
      if (await taskStatus(c, id)) await ctrOk(c, ["task", "delete", "--force", id]);
      await ctrOk(c, ["container", "delete", id]);
      await gone(c, id);
      await stillServing(c, `after the failed ${verb}`);
    }
    runc.set("fail", "exec");
    const ex = await c.ctr(["task", "exec", "--exec-id", "fx", "s1", "true"]);
    runc.clear("fail", "exec");
    assert.notEqual(ex.code, 0);
    assert.match(ex.stderr, /injected exec failure/, describe(c, "ctr task exec with a failing runc exec", ex));
    await stillServing(c, "after the failed exec");

    runc.set("fail", "kill");
    const k = await c.ctr(["task", "kill", "-s", "SIGKILL", "s1"]);
    runc.clear("fail", "kill");
    assert.notEqual(k.code, 0);
    assert.match(k.stderr, /injected kill failure/, describe(c, "ctr task kill with a failing runc kill", k));
    await stillServing(c, "after the failed kill");

    await ctrOk(c, groupRunArgs("d1", ["sleep", "100000"], { group: GROUP, runc, detach: true }));
    await ctrOk(c, ["task", "kill", "-s", "SIGKILL", "d1"]);
    await waitStatus(c, "d1", "STOPPED");
    runc.set("fail", "delete");
    const d = await c.ctr(["task", "delete", "d1"]);
    runc.clear("fail", "delete");
    assert.notEqual(d.code, 0, describe(c, "ctr task delete with a failing runc delete", d));
    assert.match(d.stderr, /injected delete failure/, describe(c, "ctr task delete with a failing runc delete", d));
    assert.equal(await taskStatus(c, "d1"), "STOPPED", "the task is still there to delete again");
    assert.equal(await deleteTask(c, "d1"), 137);
    await ctrOk(c, ["container", "delete", "d1"]);
    await gone(c, "d1");
    await stillServing(c, "after the failed delete");
  });

  void test(`a hanging runc create, start, exec, kill or ps fails at the caller's ${DEADLINE_S} s deadline, the hung runc is killed, and the shim goes on`, async (t: TestContext) => {
    const c = get();
    const figures: string[] = [];
    const hang = async (verb: string, args: string[], after?: () => Promise<void>) => {
      runc.set("hang", verb);
      const { r, ms } = await timed(c, args);
      const pid = runc.hungPid(verb);
      runc.clear("hang", verb);
      figures.push(`${verb} ${ms} ms`);
      assert.notEqual(r.code, 0, describe(c, `ctr with a hanging runc ${verb}`, r));
      assert.match(r.stderr, /deadline exceeded/i, describe(c, `ctr with a hanging runc ${verb}`, r));
      assert.ok(ms < DEADLINE_S * 1000 + 5000, `${verb}: answered after ${ms} ms`);
      assert.ok(pid > 0, `runc ${verb} hung`);
      const killed = await waitFor(() => !alive(pid), { timeoutMs: 5000, what: `the hung runc ${verb} (${pid}) to be killed` }).then(() => true, () => false);
      if (OURS) assert.ok(killed, `the hung runc ${verb} (pid ${pid}) is still running ${ms} ms after the call`);
      else if (!killed) {
        figures.push(`(${verb}: runc left hanging)`);
        process.kill(pid, "SIGKILL");
      }
      await after?.();
      await stillServing(c, `after the hung ${verb}`);
    };
    await hang("create", groupRunArgs("h-create", ["sleep", "100000"], { group: GROUP, runc, detach: true }), async () => {
      if (await taskStatus(c, "h-create")) await ctrOk(c, ["task", "delete", "--force", "h-create"]);
      await ctrOk(c, ["container", "delete", "h-create"]);
      await gone(c, "h-create");
    });
    await hang("start", groupRunArgs("h-start", ["sleep", "100000"], { group: GROUP, runc, detach: true }), async () => {
      if (await taskStatus(c, "h-start")) await ctrOk(c, ["task", "delete", "--force", "h-start"]);
      await ctrOk(c, ["container", "delete", "h-start"]);
      await gone(c, "h-start");
    });
    await hang("exec", ["task", "exec", "--exec-id", "hx", "s1", "true"]);
    await hang("kill", ["task", "kill", "-s", "SIGTERM", "s1"]);
    await hang("ps", ["task", "ps", "s1"]);
    t.diagnostic(`figure: containerd ${v}: calls with a hung runc answered after: ${figures.join(", ")}`);
  });

  void test("cleanup: s1 is killed and deleted, nothing is left", async () => {
    const c = get();
    await ctrOk(c, ["task", "kill", "-s", "SIGKILL", "s1"]);
    await waitStatus(c, "s1", "STOPPED");
    assert.equal(await deleteTask(c, "s1"), 137);
    await ctrOk(c, ["container", "delete", "s1"]);
    for (const id of ["s1", "f-create", "f-start", "h-create", "h-start"]) await assertNoLeftovers(c, id);
    assert.deepEqual(await runcList(root(c)), []);
    assert.deepEqual(shimDaemons(c), []);
  });
});
