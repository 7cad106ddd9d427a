// Stdio and log FIFOs whose other end is gone (issue 10, item 3), through ctr on 1.6/1.7/2.1.
// - `ctr run -d`: ctr reads the container's stdout FIFO only until it exits. With our shim a container that
//   keeps printing goes on writing (the shim holds the newest output and drops older bytes once the FIFO took
//   nothing for 2 s); with runc-v2 (E2E_RUNTIME=io.containerd.runc.v2, the comparison) it fills the pipe and
//   the FIFO and sleeps in write(2). Either way it must stay alive, the shim must keep serving it, a reader
//   that attaches again must get output, and kill/delete must still work.
// - The log FIFO: its name is removed from the bundle while the shim logs into it, then containerd crashes and
//   comes back. The shim must keep serving its containers, new ones included.
// test/e2e/stdio.test.ts covers output delivery itself; faults-cri.test.ts the CRI side (containerd reads the FIFOs).
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import path from "node:path";
import { test, type TestContext } from "node:test";
import { RUNTIME, VERSIONS, shimSocketPath } from "../helpers/containerd.js";
import { assertNoLeftovers, ctrOk, deleteTask, perVersion, runArgs, taskStatus, waitStatus } from "../helpers/ctr.js";
import { ShimClient } from "../helpers/events.js";
import { groupRunArgs } from "../helpers/faults.js";
import { alive, attachReader, blockedOnPipe, drainFifo, wchar, wroteMore } from "../helpers/output.js";

const LINE = "0123456789".repeat(10);
const MiB = 1 << 20;
/** runc-v2 passes backpressure on to the container: it blocks while nobody reads (the comparison). */
const BLOCKS = RUNTIME === "io.containerd.runc.v2";

perVersion("stdio and log FIFOs without a reader", (get, v) => {
  const what = BLOCKS ? "blocks (runc-v2, the comparison) but" : "goes on writing and";
  void test(`a container whose stdout nobody reads ${what} is served; a reader that attaches gets output`, async (t: TestContext) => {
    const c = get();
    await ctrOk(c, runArgs("chatty", ["yes", LINE], { detach: true }));
    await waitStatus(c, "chatty", "RUNNING");
    const shim = await ShimClient.connect(shimSocketPath(c, c.namespace, "chatty"));
    let stdout = "";
    try {
      const st = await shim.state("chatty");
      let written: number;
      if (BLOCKS) {
        written = await blockedOnPipe(st.pid);
        t.diagnostic(`figure: containerd ${v}, ${RUNTIME}: the container blocked after writing ${(written / MiB).toFixed(2)} MiB with no reader`);
      } else {
        // Far beyond what the pipe and the FIFO hold (64 KiB each) plus the shim's 1 MiB: it never blocked.
        const t0 = performance.now();
        written = await wroteMore(st.pid, 0, 32 * MiB, 60_000);
        t.diagnostic(`figure: containerd ${v}, ${RUNTIME}: with no reader the container wrote ${(written / MiB).toFixed(1)} MiB in ${Math.round(performance.now() - t0)} ms`);
      }
      assert.ok(alive(st.pid), "the container is alive");
      assert.equal((await shim.state("chatty")).status, "RUNNING");
      const r = await ctrOk(c, ["task", "exec", "--exec-id", "e1", "chatty", "echo", "served"]);
      assert.equal(r.stdout, "served\n");
      // A client attaching again (as CRI does after a restart) takes the output: the container goes on.
      const before = BLOCKS ? written : wchar(st.pid);
      await drainFifo(st.stdout, 8 * MiB);
      await wroteMore(st.pid, before, 4 * MiB);
      stdout = st.stdout;
    } finally {
      shim.close();
    }
    // A delete waits (bounded) for the output to be taken; that bound is measured once, on the last version.
    const reader = v === VERSIONS[VERSIONS.length - 1] ? undefined : attachReader(stdout);
    await ctrOk(c, ["task", "kill", "-s", "SIGKILL", "chatty"]);
    await waitStatus(c, "chatty", "STOPPED");
    const t0 = performance.now();
    assert.equal(await deleteTask(c, "chatty"), 137);
    t.diagnostic(`figure: containerd ${v}, ${RUNTIME}: task delete ${reader ? "with a reader attached" : "with undrained output"} took ${Math.round(performance.now() - t0)} ms`);
    reader?.stop();
    await ctrOk(c, ["container", "delete", "chatty"]);
    await assertNoLeftovers(c, "chatty");
  });

  void test("the shim keeps serving after its log FIFO is removed and containerd crashes and comes back", async (t: TestContext) => {
    const c = get();
    const group = "logfifo";
    const run = (id: string) => ctrOk(c, groupRunArgs(id, ["sleep", "100000"], { group, detach: true }));
    await run("g1");
    await waitStatus(c, "g1", "RUNNING");
    // The daemon was started for g1's bundle and logs into g1's FIFO.
    rmSync(path.join(c.state, "io.containerd.runtime.v2.task", c.namespace, "g1", "log"));
    await run("g2");
    await waitStatus(c, "g2", "RUNNING");
    await c.kill9();
    await c.restart();
    const after = { g1: await taskStatus(c, "g1"), g2: await taskStatus(c, "g2") };
    t.diagnostic(`after the restart (containerd ${v}): ${JSON.stringify(after)}`);
    assert.deepEqual(after, { g1: "RUNNING", g2: "RUNNING" }, c.logTail(30));
    await run("g3");
    await waitStatus(c, "g3", "RUNNING");
    for (const id of ["g1", "g2", "g3"]) {
      const r = await ctrOk(c, ["task", "exec", "--exec-id", `x-${id}`, id, "echo", id]);
      assert.equal(r.stdout, `${id}\n`);
    }
    for (const id of ["g1", "g2", "g3"]) await ctrOk(c, ["task", "kill", "-s", "SIGKILL", id]);
    for (const id of ["g1", "g2", "g3"]) await waitStatus(c, id, "STOPPED");
    for (const id of ["g1", "g2", "g3"]) assert.equal(await deleteTask(c, id), 137);
    for (const id of ["g1", "g2", "g3"]) await ctrOk(c, ["container", "delete", id]);
    for (const id of ["g1", "g2", "g3"]) await assertNoLeftovers(c, id);
  });
});
