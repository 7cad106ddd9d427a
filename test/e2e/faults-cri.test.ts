// Faults under CRI (issue 10, item 3), on every containerd version under test:
// - kill -9 of the pod's shim daemon while the pause container and two app containers run (one with an exec
//   in flight): once containerd has cleaned up, and again once the pod is removed, no runc container (runc list
//   under the runc root), mount, socket, bundle, cgroup, pause or container process may be left.
//   (grouping-namespace.test.ts kills a shared daemon and checks daemons, mounts, bundles and tasks.)
// - kill -9 of containerd while a pod's container prints without pause: containerd (CRI) was the FIFOs'
//   reader. The container stays alive (it may block once the buffers are full), the shim answers State, and
//   after the restart CRI reads again: the container goes on and its log grows.
import assert from "node:assert/strict";
import { existsSync, rmSync, statSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { after, before, suite, test, type TestContext } from "node:test";
import { RUNTIME, VERSIONS, mountsUnder, shimSocketPath, startContainerd, type Containerd, type ContainerdVersion } from "../helpers/containerd.js";
import { CRI_NS, CriClient, cri, criTaskPids, hostNetworkPod, shimDaemons, sleeperContainer, type PodSandboxConfig } from "../helpers/cri.js";
import { ShimClient } from "../helpers/events.js";
import { OURS, bundles, cgroupsUnder, runcList } from "../helpers/faults.js";
import { alive, blockedOnPipe, wchar, wroteMore } from "../helpers/output.js";
import { waitFor } from "../helpers/wait.js";

const RUNC_ROOT = path.join("/run/containerd/runc", CRI_NS);
const MiB = 1 << 20;

interface Pod { id: string; config: PodSandboxConfig; apps: string[] }

function criSuite(v: ContainerdVersion): void {
  void suite(`faults under CRI (containerd ${v}, ${RUNTIME})`, { timeout: 180_000 }, () => {
    let c: Containerd | undefined;
    let client: CriClient | undefined;
    const get = (): Containerd => c ?? assert.fail(`containerd ${v} did not start`);
    const cc = (): CriClient => client ?? assert.fail("no CRI client");

    before(async () => {
      c = await startContainerd(v, { cri: true, namespace: CRI_NS, images: ["busybox", "pause"] });
      client = await CriClient.connect(c.address);
    });
    after(async () => {
      client?.close();
      await c?.stop();
    });

    async function runPod(name: string, apps: { name: string; command?: string[] }[]): Promise<Pod> {
      const logDir = path.join(get().dir, "pods", name);
      await mkdir(logDir, { recursive: true });
      const config = hostNetworkPod(`${name}-${v.replace(".", "")}`, logDir);
      const id = await cc().runPodSandbox(config);
      const ids: string[] = [];
      for (const a of apps) {
        const spec = { ...sleeperContainer(a.name), ...(a.command ? { command: a.command } : {}) };
        const cid = await cc().createContainer(id, spec, config);
        await cc().startContainer(cid);
        ids.push(cid);
      }
      return { id, config, apps: ids };
    }

    async function removePod(pod: Pod): Promise<void> {
      for (const a of pod.apps) {
        await cc().stopContainer(a, 0);
        await cc().removeContainer(a);
      }
      await cc().stopPodSandbox(pod.id);
      await cc().removePodSandbox(pod.id);
    }

    /** Everything of `ids` (pod and container ids) still on the host. */
    async function leftovers(ids: string[], pids: number[], podRemoved = true) {
      const cd = get();
      return {
        runc: (await runcList(RUNC_ROOT)).filter((id) => ids.includes(id)),
        processes: pids.filter(alive),
        // A pod's /dev/shm (CRI's, under io.containerd.grpc.v1.cri/sandboxes) goes with the pod, not with its tasks.
        mounts: mountsUnder(cd.dir).filter((m) => ids.some((id) => m.includes(id)) && (podRemoved || !m.includes("/io.containerd.grpc.v1.cri/"))),
        bundles: bundles(cd, CRI_NS).filter((b) => ids.includes(b)),
        cgroups: cgroupsUnder(CRI_NS).filter((g) => ids.some((id) => g.endsWith(id))),
        daemons: shimDaemons(cd),
      };
    }

    type Left = Awaited<ReturnType<typeof leftovers>>;
    const counts = (l: Left | undefined) => Object.fromEntries(Object.entries(l ?? { runc: [], processes: [], mounts: [], bundles: [], cgroups: [], daemons: [] }).map(([k, v]) => [k, v.length]));

    /** Waits until nothing of `ids` is left; returns what is left at the deadline otherwise (no throw). */
    async function settle(what: string, ids: string[], pids: number[], podRemoved = true): Promise<Left> {
      let last = await leftovers(ids, pids, podRemoved);
      await waitFor(async () => Object.values(last = await leftovers(ids, pids, podRemoved)).every((x) => x.length === 0),
        { timeoutMs: OURS ? 20_000 : 8000, what }).catch(() => undefined);
      return last;
    }

    async function assertNothingLeft(what: string, ids: string[], pids: number[], keep: (keyof Awaited<ReturnType<typeof leftovers>>)[] = []) {
      let last = await leftovers(ids, pids);
      const empty = (l: typeof last) => Object.entries(l).every(([k, v]) => keep.includes(k as keyof typeof l) || v.length === 0);
      try {
        await waitFor(async () => empty(last = await leftovers(ids, pids)), { timeoutMs: 20_000, what });
      } catch (err) {
        throw new Error(`${(err as Error).message}: ${JSON.stringify(last)}\n${get().logTail(30)}`);
      }
    }

    void test("kill -9 of the pod's shim leaves no runc container, process, mount, socket, bundle or cgroup", async (t: TestContext) => {
      const pod = await runPod("shimkill", [{ name: "a1" }, { name: "a2" }]);
      const ids = [pod.id, ...pod.apps];
      const pids = await criTaskPids(get());
      const taskPids = ids.map((id) => pids.get(id) ?? 0);
      assert.ok(taskPids.every((p) => p > 0), `task pids ${JSON.stringify([...pids])}`);
      assert.deepEqual((await runcList(RUNC_ROOT)).filter((id) => ids.includes(id)).sort(), [...ids].sort(), "runc knows the pod's containers");
      assert.ok(cgroupsUnder(CRI_NS).some((g) => g.endsWith(pod.apps[0]!)), `a cgroup for ${pod.apps[0]} in ${JSON.stringify(cgroupsUnder(CRI_NS))}`);
      const daemons = shimDaemons(get());
      assert.equal(daemons.length, 1, `one shim daemon for the pod: ${JSON.stringify(daemons)}`);
      const socket = shimSocketPath(get(), CRI_NS, pod.id);
      // An exec in flight when the shim dies.
      const exec = cc().execSync(pod.apps[0]!, ["sleep", "30"], 60).catch((e: Error) => e);

      process.kill(daemons[0]!, "SIGKILL");
      const t0 = performance.now();
      for (const a of pod.apps) {
        await waitFor(async () => (await cc().containerStatus(a)).status?.state === cri.ContainerState.CONTAINER_EXITED,
          { timeoutMs: 30_000, what: `${a} to be reported exited` });
      }
      await waitFor(async () => (await cc().podSandboxStatus(pod.id)).status?.state === cri.PodSandboxState.SANDBOX_NOTREADY,
        { timeoutMs: 30_000, what: "the pod to be NOTREADY" });
      const execResult = await exec;
      t.diagnostic(`exec in flight: ${execResult instanceof Error ? execResult.message : `exit ${execResult.exitCode}`}`);
      // containerd's cleanup of a dead shim (its `delete` per bundle), before anything is removed through CRI:
      // containerd's cleanup of a dead shim (its `delete`), before anything is removed through CRI:
      const cleaned = await settle("containerd's cleanup after the shim died", ids, taskPids, false);
      t.diagnostic(`figure: containerd ${v}, ${RUNTIME}: after containerd's cleanup (${Math.round(performance.now() - t0)} ms after the kill) left ${JSON.stringify(counts(cleaned))}`);
      if (OURS) assert.deepEqual(counts(cleaned), counts(undefined), `left after the kill: ${JSON.stringify(cleaned)}\n${get().logTail(30)}`);
      if (OURS || !existsSync(socket)) assert.ok(!existsSync(socket), `the pod's shim socket ${socket} is gone`);
      else {
        t.diagnostic(`${RUNTIME} left its socket`);
        rmSync(socket, { force: true });
      }

      await removePod(pod);
      const removed = await settle("no trace of the pod once removed", ids, taskPids);
      t.diagnostic(`figure: containerd ${v}, ${RUNTIME}: after the pod was removed, left ${JSON.stringify(counts(removed))}`);
      if (OURS) assert.deepEqual(counts(removed), counts(undefined), `left after removal: ${JSON.stringify(removed)}\n${get().logTail(30)}`);
      assert.deepEqual([...(await criTaskPids(get())).keys()].filter((id) => ids.includes(id)), [], "no task left");
      assert.deepEqual(await cc().listPodSandbox(), []);
    });

    void test("kill -9 of containerd while a pod's container prints: it stays alive and goes on after the restart", async (t: TestContext) => {
      const line = "0123456789".repeat(10);
      const pod = await runPod("chatty", [{ name: "talker", command: ["yes", line] }]);
      const id = pod.apps[0]!;
      const pid = (await criTaskPids(get())).get(id) ?? 0;
      assert.ok(pid > 0);
      const log = path.join(get().dir, "pods", "chatty", "talker.log");
      await waitFor(() => existsSync(log) && statSync(log).size > MiB, { what: `${log} to grow` });
      const beforeKill = wchar(pid);
      await get().kill9();
      // Nobody reads now: with runc-v2 the container goes on until the buffers are full, then waits; ours stops
      // holding it back after 2 s (src/stdio/stall.ts), so it goes on writing. Either way it must not die.
      const shim = await ShimClient.connect(shimSocketPath(get(), CRI_NS, pod.id));
      try {
        const stalled = OURS ? await wroteMore(pid, beforeKill, 4 * MiB, 30_000) : await blockedOnPipe(pid);
        t.diagnostic(`figure: containerd ${v}, ${RUNTIME}: ${((stalled - beforeKill) / MiB).toFixed(2)} MiB written from the kill ${OURS ? "(goes on)" : "until it waited"}`);
        assert.ok(alive(pid), "the container is alive");
        assert.equal((await shim.state(id)).status, "RUNNING", "the shim answers while containerd is down");
      } finally {
        shim.close();
      }
      const logSize = statSync(log).size;
      await get().restart();
      client?.close();
      client = await CriClient.connect(get().address);
      await wroteMore(pid, wchar(pid), 8 * MiB, 30_000);
      await waitFor(() => statSync(log).size > logSize + 4 * MiB, { what: `${log} to grow after the restart` });
      assert.equal((await cc().containerStatus(id)).status?.state, cri.ContainerState.CONTAINER_RUNNING);
      await removePod(pod);
      await assertNothingLeft("no trace of the chatty pod", [pod.id, id], [pid]);
    });
  });
}

for (const v of VERSIONS) criSuite(v);
