// CRI podsandbox mode (the default) with our shim as the default runtime: a host-network pod with two app
// containers, driven over CRI like kubelet would (protocol.md §4.8, §6.5, §11 items 4, 5, 11).
// On containerd 2.x the shim answers `start` with version 3, so app containers are created on the pod's
// shim without a `start` of their own (task v3; §6.4); on 2.1 the pod also runs with SHIM_TS_MAX_VERSION=2,
// the version-2 path (a `start` per container). docs/grouping.md uses the timings both variants print.
import assert from "node:assert/strict";
import { existsSync, readFileSync, readlinkSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { after, before, suite, test, type TestContext } from "node:test";
import {
  BUSYBOX_REF, RUNTIME, VERSIONS, mountsUnder, shimSocketPath, startContainerd, type Containerd, type ContainerdVersion,
} from "../helpers/containerd.js";
import {
  CRI_NS, CriClient, cri, criTaskPids, hostNetworkPod, instrumentShim, shimDaemons, sleeperContainer,
  type PodSandboxConfig, type ShimRun,
} from "../helpers/cri.js";
import { PAUSE_REF } from "../helpers/image.js";
import { waitFor } from "../helpers/wait.js";

const OURS = RUNTIME === "io.containerd.ts.v2";
const ms = (t0: number): number => Math.round(performance.now() - t0);

function ppid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

function podSuite(v: ContainerdVersion, forceVersion2: boolean): void {
  const label = forceVersion2 ? ", shim forced to version 2" : "";
  // The pod's shim answers version 3 to containerd 2.x: one `start` for the whole pod, else one per container.
  const expectedStarts = v === "2.1" && !forceVersion2 ? 1 : 3;
  void suite(`a CRI host-network pod (containerd ${v}, ${RUNTIME}${label})`, { timeout: 180_000 }, () => {
    let c: Containerd | undefined;
    let client: CriClient | undefined;
    let calls: () => ShimRun[] = () => [];
    let podId = "";
    const apps: string[] = [];
    let sandboxConfig: PodSandboxConfig = {};
    const get = (): Containerd => { if (!c) throw new Error(`containerd ${v} did not start`); return c; };
    const cc = (): CriClient => { if (!client) throw new Error("no CRI client"); return client; };

    before(async () => {
      const env = forceVersion2 ? { SHIM_TS_MAX_VERSION: "2" } : undefined;
      c = await startContainerd(v, { cri: true, namespace: CRI_NS, images: ["busybox", "pause"], env });
      if (OURS) calls = await instrumentShim(c);
      client = await CriClient.connect(c.address);
    });
    after(async () => {
      client?.close();
      await c?.stop();
    });

    void test("sees the imported busybox and pause images", async () => {
      for (const ref of [BUSYBOX_REF, PAUSE_REF]) assert.ok(await cc().imageStatus(ref), `CRI does not know ${ref}`);
    });

    void test("runs the pod and two app containers, all READY/RUNNING", async (t: TestContext) => {
      const logDir = path.join(get().dir, "pods", "p1");
      await mkdir(logDir, { recursive: true });
      sandboxConfig = hostNetworkPod(`pod-${v.replace(".", "")}`, logDir);
      const t0 = performance.now();
      podId = await cc().runPodSandbox(sandboxConfig);
      const tRun = ms(t0);
      for (const name of ["app1", "app2"]) {
        const id = await cc().createContainer(podId, sleeperContainer(name), sandboxConfig);
        await cc().startContainer(id);
        apps.push(id);
      }
      const total = ms(t0);
      const status = await cc().podSandboxStatus(podId, true);
      assert.equal(status.status?.state, cri.PodSandboxState.SANDBOX_READY);
      for (const id of apps) {
        const s = await cc().containerStatus(id);
        assert.equal(s.status?.state, cri.ContainerState.CONTAINER_RUNNING, `${id} is not running`);
      }
      const listed = await cc().listContainers({ podSandboxId: podId });
      assert.deepEqual(listed.map((x) => x.id).sort(), [...apps].sort());
      assert.ok(listed.every((x) => x.state === cri.ContainerState.CONTAINER_RUNNING));
      const pods = await cc().listPodSandbox({ id: podId });
      assert.equal(pods.length, 1);
      const shimCalls = calls();
      if (OURS) assert.equal(shimCalls.filter((x) => x.action === "start").length, expectedStarts, JSON.stringify(shimCalls));
      t.diagnostic(`timing containerd ${v}${label}: RunPodSandbox ${tRun} ms, pod with 2 app containers started in ${total} ms; ` +
        `shim runs: ${JSON.stringify(shimCalls)}`);
    });

    void test("puts the pause process and both containers in the same ipc and net namespaces", async () => {
      const pids = await criTaskPids(get());
      const pausePid = pids.get(podId);
      assert.ok(pausePid, `no task for the sandbox ${podId}`);
      const hostNs = (pid: number | "self", ns: string): string => readlinkSync(`/proc/${pid}/ns/${ns}`);
      assert.equal(hostNs(pausePid, "net"), hostNs("self", "net"), "a host-network pod is in the host's net namespace");
      assert.notEqual(hostNs(pausePid, "ipc"), hostNs("self", "ipc"), "the pod has its own ipc namespace");
      for (const id of apps) {
        for (const ns of ["ipc", "net"]) {
          const r = await cc().execSync(id, ["readlink", `/proc/self/ns/${ns}`]);
          assert.equal(r.exitCode, 0, r.stderr);
          assert.equal(r.stdout.trim(), hostNs(pausePid, ns), `${ns} namespace of ${id}`);
        }
      }
      const r = await cc().execSync(apps[0]!, ["sh", "-c", "echo out; echo err >&2; exit 3"]);
      assert.deepEqual([r.stdout, r.stderr, r.exitCode], ["out\n", "err\n", 3]);
    });

    void test("serves the pause container and both app containers from exactly one shim daemon", async () => {
      const daemons = shimDaemons(get());
      assert.equal(daemons.length, 1, `shim daemons: ${JSON.stringify(daemons)}`);
      const pids = await criTaskPids(get());
      for (const id of [podId, ...apps]) {
        assert.equal(ppid(pids.get(id)!), daemons[0], `parent of ${id}'s init is the shim daemon`);
      }
    });

    void test("stops and removes everything, leaving no shim, socket, mount or bundle", async (t: TestContext) => {
      const t0 = performance.now();
      await cc().stopContainer(apps[0]!, 10);   // SIGTERM: the trap exits 0
      await cc().stopContainer(apps[1]!, 0);    // SIGKILL at once
      const s0 = await cc().containerStatus(apps[0]!);
      const s1 = await cc().containerStatus(apps[1]!);
      assert.equal(s0.status?.state, cri.ContainerState.CONTAINER_EXITED);
      assert.deepEqual([s0.status?.exitCode, s1.status?.exitCode], [0, 137]);
      for (const id of apps) await cc().removeContainer(id);
      await cc().stopPodSandbox(podId);
      assert.equal((await cc().podSandboxStatus(podId)).status?.state, cri.PodSandboxState.SANDBOX_NOTREADY);
      await cc().removePodSandbox(podId);
      assert.deepEqual(await cc().listPodSandbox(), []);
      const cd = get();
      const bundles = [podId, ...apps].map((id) => path.join(cd.state, "io.containerd.runtime.v2.task", CRI_NS, id));
      const socket = shimSocketPath(cd, CRI_NS, podId);
      const left = () => ({ daemons: shimDaemons(cd), socket: existsSync(socket), mounts: mountsUnder(cd.dir),
        bundles: bundles.filter((b) => existsSync(b)) });
      try {
        await waitFor(() => { const l = left(); return l.daemons.length + l.mounts.length + l.bundles.length === 0 && !l.socket; },
          { timeoutMs: 10_000, what: "the pod's shim, socket, mounts and bundles to go" });
      } catch (err) {
        throw new Error(`${(err as Error).message}: ${JSON.stringify(left())}\n${cd.logTail(30)}`);
      }
      t.diagnostic(`timing containerd ${v}${label}: pod stopped and removed in ${ms(t0)} ms; shim runs: ${JSON.stringify(calls())}`);
    });
  });
}

for (const v of VERSIONS) {
  podSuite(v, false);
  if (OURS && v === "2.1") podSuite(v, true);
}
