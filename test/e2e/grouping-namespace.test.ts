// SHIM_TS_GROUPING=namespace (issue 9, lever 2): every pod of a namespace on one shim daemon, driven over
// CRI like kubelet would. Two pods share the daemon; stopping one leaves the other running; a containerd
// restart reconnects both; kill -9 of the shared daemon leaves nothing behind once containerd cleaned up.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { after, before, suite, test } from "node:test";
import { RUNTIME, VERSIONS, mountsUnder, startContainerd, type Containerd, type ContainerdVersion } from "../helpers/containerd.js";
import { CRI_NS, CriClient, cri, criTaskPids, hostNetworkPod, shimDaemons, sleeperContainer, type PodSandboxConfig } from "../helpers/cri.js";
import { waitFor } from "../helpers/wait.js";

if (RUNTIME !== "io.containerd.ts.v2") throw new Error(`grouping-namespace tests our shim only (E2E_RUNTIME=${RUNTIME})`);

function ppid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

interface Pod { id: string; config: PodSandboxConfig; app: string }

function nsSuite(v: ContainerdVersion): void {
  void suite(`namespace grouping: pods of k8s.io share one shim daemon (containerd ${v})`, { timeout: 240_000 }, () => {
    let c: Containerd | undefined;
    let client: CriClient | undefined;
    const pods = new Map<string, Pod>();
    let daemon = 0;
    const get = (): Containerd => { if (!c) throw new Error(`containerd ${v} did not start`); return c; };
    const cc = (): CriClient => { if (!client) throw new Error("no CRI client"); return client; };

    async function runPod(name: string): Promise<Pod> {
      const logDir = path.join(get().dir, "pods", name);
      await mkdir(logDir, { recursive: true });
      const config = hostNetworkPod(`${name}-${v.replace(".", "")}`, logDir);
      const id = await cc().runPodSandbox(config);
      const app = await cc().createContainer(id, sleeperContainer(`${name}-app`), config);
      await cc().startContainer(app);
      const pod = { id, config, app };
      pods.set(name, pod);
      return pod;
    }

    async function assertRunning(pod: Pod, what: string): Promise<void> {
      assert.equal((await cc().podSandboxStatus(pod.id)).status?.state, cri.PodSandboxState.SANDBOX_READY, `${what}: pod`);
      assert.equal((await cc().containerStatus(pod.app)).status?.state, cri.ContainerState.CONTAINER_RUNNING, `${what}: app`);
      const r = await cc().execSync(pod.app, ["echo", "alive"]);
      assert.deepEqual([r.stdout, r.exitCode], ["alive\n", 0], `${what}: exec`);
    }

    async function removePod(pod: Pod): Promise<void> {
      await cc().stopContainer(pod.app, 0);
      await cc().removeContainer(pod.app);
      await cc().stopPodSandbox(pod.id);
      await cc().removePodSandbox(pod.id);
    }

    function leftovers(ids: string[]): { daemons: number[]; mounts: string[]; bundles: string[] } {
      const cd = get();
      const bundles = ids.map((id) => path.join(cd.state, "io.containerd.runtime.v2.task", CRI_NS, id));
      return { daemons: shimDaemons(cd), mounts: mountsUnder(cd.dir), bundles: bundles.filter((b) => existsSync(b)) };
    }

    before(async () => {
      c = await startContainerd(v, { cri: true, namespace: CRI_NS, images: ["busybox", "pause"], env: { SHIM_TS_GROUPING: "namespace" } });
      client = await CriClient.connect(c.address);
    });
    after(async () => {
      client?.close();
      await c?.stop();
    });

    void test("runs two pods, each with a container, on exactly one shim daemon", async () => {
      const a = await runPod("a");
      const b = await runPod("b");
      const daemons = shimDaemons(get());
      assert.equal(daemons.length, 1, `shim daemons: ${JSON.stringify(daemons)}`);
      daemon = daemons[0]!;
      const pids = await criTaskPids(get());
      for (const id of [a.id, a.app, b.id, b.app]) assert.equal(ppid(pids.get(id)!), daemon, `parent of ${id}'s init`);
    });

    void test("stopping and removing one pod leaves the other running on the same daemon", async () => {
      const a = pods.get("a")!;
      await removePod(a);
      pods.delete("a");
      await assertRunning(pods.get("b")!, "pod b after pod a was removed");
      assert.deepEqual(shimDaemons(get()), [daemon], "the shared daemon is still the only one");
      await waitFor(() => leftovers([a.id, a.app]).bundles.length === 0, { timeoutMs: 10_000, what: "pod a's bundles to go" });
    });

    // The daemon was started in pod a's bundle and logged to its FIFO, whose reader containerd closed with it.
    void test("the shared daemon's log still reaches containerd's log once the pod it started for is gone", async () => {
      const b = pods.get("b")!;
      process.kill(daemon, "SIGUSR1");
      await waitFor(async () => (await get().logs()).includes(`container=${b.app} `), { timeoutMs: 10_000, what: `the state dump naming ${b.app} in containerd's log` })
        .catch((err: Error) => assert.fail(`${err.message}\n${get().logTail(20)}`));
    });

    // On 1.6/1.7 this once failed 2 times in about 16 loaded runs on a branch (containerd logged "cleaning up
    // after shim disconnected" while loading tasks, pod b came back NOTREADY), cause not identified; on main
    // it then passed 28 of 28 runs (14 each on 1.6 and 1.7) at load average ~7. On failure the log tail shows.
    void test("a containerd restart reconnects the pods, and a new pod joins the same daemon", async () => {
      await get().restart();
      client?.close();
      client = await CriClient.connect(get().address);
      try {
        await assertRunning(pods.get("b")!, "pod b after the restart");
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${get().logTail(60)}`);
      }
      const d = await runPod("d");
      await assertRunning(d, "pod d started after the restart");
      assert.deepEqual(shimDaemons(get()), [daemon], "pods before and after the restart share the daemon");
    });

    void test("kill -9 of the shared daemon leaves nothing behind once the pods are removed", async () => {
      const all = [...pods.values()];
      assert.ok(daemon > 0, "the shared daemon was found");
      process.kill(daemon, "SIGKILL");
      for (const pod of all) {
        await waitFor(async () => (await cc().containerStatus(pod.app)).status?.state === cri.ContainerState.CONTAINER_EXITED,
          { timeoutMs: 30_000, what: `${pod.app} to be reported exited` });
      }
      for (const pod of all) await removePod(pod);
      const ids = all.flatMap((p) => [p.id, p.app]);
      try {
        await waitFor(() => { const l = leftovers(ids); return l.daemons.length + l.mounts.length + l.bundles.length === 0; },
          { timeoutMs: 15_000, what: "no shim daemon, mount or bundle" });
      } catch (err) {
        throw new Error(`${(err as Error).message}: ${JSON.stringify(leftovers(ids))}\n${get().logTail(30)}`);
      }
      const pids = await criTaskPids(get());
      assert.deepEqual([...pids.keys()], [], "no task left");
    });
  });
}

for (const v of VERSIONS) nsSuite(v);
