// Pod churn through CRI for load tests and the soak bench: pods with N containers run, stopped and removed
// like kubelet does, and a count of what is left on the host (runc containers, mounts, bundles, cgroups,
// pause processes, shim sockets) besides a set of ids that may stay.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { mountsUnder, shimSocketPath, type Containerd } from "./containerd.js";
import { CRI_NS, CriClient, hostNetworkPod, sleeperContainer, type PodSandboxConfig } from "./cri.js";
import { bundles, cgroupsUnder, runcList } from "./faults.js";

export interface Pod { id: string; config: PodSandboxConfig; apps: string[] }

/** Runs a host-network pod `name` with `n` sleeper containers (exit 0 on SIGTERM). */
export async function startPod(c: Containerd, cc: CriClient, name: string, n: number): Promise<Pod> {
  const logDir = path.join(c.dir, "pods", name);
  await mkdir(logDir, { recursive: true });
  const config = hostNetworkPod(name, logDir);
  const id = await cc.runPodSandbox(config);
  const apps: string[] = [];
  for (let i = 0; i < n; i++) {
    const cid = await cc.createContainer(id, sleeperContainer(`${name}-c${i}`), config);
    await cc.startContainer(cid);
    apps.push(cid);
  }
  return { id, config, apps };
}

/** Stops (even containers SIGKILL at once, odd ones SIGTERM) and removes the containers, then the pod. */
export async function stopPod(cc: CriClient, pod: Pod): Promise<void> {
  for (const [i, a] of pod.apps.entries()) {
    await cc.stopContainer(a, i % 2 === 0 ? 0 : 10);
    await cc.removeContainer(a);
  }
  await cc.stopPodSandbox(pod.id);
  await cc.removePodSandbox(pod.id);
}

/**
 * One cycle: `pods` pods of `containers` containers are all started (`parallel` at a time), then all stopped
 * and removed. Returns the failed calls (a failed pod is still torn down as far as it got) and the pod ids.
 */
export async function runCycle(c: Containerd, cc: CriClient, tag: string, pods: number, containers: number, parallel: number): Promise<{ errors: string[]; podIds: string[] }> {
  const errors: string[] = [];
  const up: Pod[] = [];
  const pool = async (n: number, f: (i: number) => Promise<void>): Promise<void> => {
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(parallel, n) }, async () => {
      for (let i = next++; i < n; i = next++) await f(i);
    }));
  };
  await pool(pods, async (i) => {
    try {
      up.push(await startPod(c, cc, `${tag}-p${i}`, containers));
    } catch (err) {
      errors.push(`start ${tag}-p${i}: ${(err as Error).message}`);
    }
  });
  await pool(up.length, async (i) => {
    try {
      await stopPod(cc, up[i]!);
    } catch (err) {
      errors.push(`stop ${up[i]!.id}: ${(err as Error).message}`);
    }
  });
  // A pod whose start failed half-way: remove whatever CRI still lists, so it is not counted as left.
  for (const p of await cc.listPodSandbox()) {
    if (p.metadata?.name?.startsWith(`${tag}-`)) {
      errors.push(`pod ${p.id} of ${tag} still listed`);
      for (const ct of await cc.listContainers({ podSandboxId: p.id })) await cc.removeContainer(ct.id).catch(() => undefined);
      await cc.stopPodSandbox(p.id).catch(() => undefined);
      await cc.removePodSandbox(p.id).catch(() => undefined);
    }
  }
  return { errors, podIds: up.map((p) => p.id) };
}

/** Pause processes (catatonit) whose cgroup is under /k8s.io, other than `keep`'s. */
function pauseProcesses(keepIds: string[]): number[] {
  const out: number[] = [];
  for (const p of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      if (!readFileSync(`/proc/${p}/cmdline`, "utf8").includes("catatonit")) continue;
      const cg = readFileSync(`/proc/${p}/cgroup`, "utf8");
      if (cg.includes(`/${CRI_NS}/`) && !keepIds.some((id) => cg.includes(id))) out.push(Number(p));
    } catch { /* gone */ }
  }
  return out;
}

/**
 * Ids of the runc containers and cgroups of CRI namespace k8s.io already on the host: what another containerd
 * (another test, a run that was killed) left there. A test takes them before it starts its own containerd and
 * passes them to {@link hostLeftovers} among the ids to keep, so that only what it created counts.
 */
export async function foreignIds(): Promise<string[]> {
  const runc = await runcList(path.join("/run/containerd/runc", CRI_NS));
  return [...new Set([...runc, ...cgroupsUnder(CRI_NS).map((cg) => path.basename(cg))])];
}

/**
 * Counts of what is on the host for CRI namespace k8s.io of `c`, not counting `keepIds` (pod and container
 * ids); `sockets` are the per-pod shim sockets of `podIds` that still exist.
 */
export async function hostLeftovers(c: Containerd, keepIds: string[], podIds: string[] = []): Promise<Record<string, number>> {
  const notKept = (id: string) => !keepIds.some((k) => id.includes(k));
  return {
    runc: (await runcList(path.join("/run/containerd/runc", CRI_NS))).filter(notKept).length,
    mounts: mountsUnder(c.dir).filter(notKept).length,
    bundles: bundles(c, CRI_NS).filter(notKept).length,
    cgroups: cgroupsUnder(CRI_NS).filter(notKept).length,
    pause: pauseProcesses(keepIds).length,
    // Per-pod daemons' sockets: with namespace grouping the shared one stays while a kept pod lives (churn-load's
    // last test checks that it goes with the anchor pod).
    sockets: podIds.filter((id) => existsSync(shimSocketPath({ address: c.address, grouping: "pod" }, CRI_NS, id))).length,
  };
}
