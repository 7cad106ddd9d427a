// CRI pieces of the benchmarks: a private containerd with the CRI plugin where the default handler is ours
// (`io.containerd.ts.v2`), "runc" is containerd-shim-runc-v2 and, on 1.7, "shimmode" is ours in shim sandboxer
// mode; pods of busybox sleepers driven over CRI (test/helpers/cri.ts), and the shim daemons that serve them.
//
// Other helpers run CRI tests on this machine, and CRI keeps every containerd's containers in namespace k8s.io
// (runc root /run/containerd/runc/k8s.io). So this never hands k8s.io to the harness's stop(), which would
// kill and delete everything there: images are imported with a plain ctr, pods get the cgroup parent
// /<bench namespace>, and only the ids created here are deleted from the shared runc root.
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { runCapture, startContainerd } from "../test/helpers/containerd.js";
import { CRI_NS, CriClient, cri, hostNetworkPod, shimDaemons, sleeperContainer, type PodSandboxConfig } from "../test/helpers/cri.js";
import { busyboxImageTar, pauseImageTar } from "../test/helpers/image.js";
import { waitFor } from "../test/helpers/wait.js";
import { OURS, RUNC, ctrCommand, type Containerd, type ContainerdVersion } from "./lib.js";

/** CRI runtime handlers of a bench containerd. */
export const HANDLER = { ours: "", runc: "runc", shimMode: "shimmode" } as const;
export type Handler = (typeof HANDLER)[keyof typeof HANDLER];

/** 1.7's CRI config (version 2) for a handler running our shim in shim sandboxer mode (protocol.md §6.1). */
const SHIM_MODE_CONFIG = `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${HANDLER.shimMode}]
  runtime_type = "${OURS}"
  sandbox_mode = "shim"
`;

export interface CriBench {
  readonly c: Containerd;
  readonly client: CriClient;
  /** Pods and containers created here and not yet removed (deleted from runc's root on stop). */
  readonly live: Set<string>;
}

export interface Pod { id: string; config: PodSandboxConfig; containers: string[] }

/** A CRI containerd `v` with `env` (reaches every shim's `start`); `shimMode` adds the 1.7 shim sandboxer handler. */
export async function criContainerd(v: ContainerdVersion, opts: { env?: Record<string, string>; shimMode?: boolean } = {}): Promise<CriBench> {
  if (process.getuid?.() !== 0) throw new Error("benchmarks need root");
  if (opts.shimMode && v !== "1.7") throw new Error("shim sandboxer mode is measured on containerd 1.7 only");
  const env = { ...opts.env, ...(opts.shimMode ? { ENABLE_CRI_SANDBOXES: "1" } : {}) };
  const c = await startContainerd(v, {
    cri: true, runtime: OURS, namespace: `bench-${process.pid}`, images: [], env,
    extraConfig: opts.shimMode ? SHIM_MODE_CONFIG : "",
  });
  try {
    for (const tar of [await busyboxImageTar(), await pauseImageTar()]) {
      const [cmd, args] = ctrCommand(c, ["images", "import", "--all-platforms", tar]);
      args[args.indexOf("-n") + 1] = CRI_NS;
      const r = await runCapture(cmd, args, { timeoutMs: 60_000 });
      if (r.code !== 0) throw new Error(`ctr images import ${tar} into ${CRI_NS}: ${r.stderr}`);
    }
    const client = await CriClient.connect(c.address);
    return { c, client, live: new Set() };
  } catch (err) {
    await c.stop();
    throw err;
  }
}

/** Removes what is left of this bench's pods, then stops containerd (see the file header). */
export async function stopCri(b: CriBench): Promise<void> {
  b.client.close();
  const live = [...b.live];
  try {
    await b.c.stop(); // kills our shims and container processes (they refer to its directory), not k8s.io's others
  } finally {
    const root = path.join("/run/containerd/runc", CRI_NS);
    for (const id of live) await runCapture("runc", ["--root", root, "delete", "--force", id], { timeoutMs: 10_000 });
  }
}

/** RunPodSandbox with `handler`, then `n` sleeper containers created and started, each RUNNING. */
export async function runPod(b: CriBench, handler: Handler, name: string, n: number): Promise<Pod> {
  const logDir = path.join(b.c.dir, "pods", name);
  await mkdir(logDir, { recursive: true });
  const base = hostNetworkPod(name, logDir);
  const config: PodSandboxConfig = { ...base, linux: { ...base.linux, cgroupParent: `/${b.c.namespace}` } };
  const id = await b.client.runPodSandbox(config, handler);
  b.live.add(id);
  const pod: Pod = { id, config, containers: [] };
  for (let i = 0; i < n; i++) await addContainer(b, pod, `c${i}`);
  return pod;
}

/** Creates and starts one more sleeper container in `pod`; resolves once CRI reports it RUNNING. */
export async function addContainer(b: CriBench, pod: Pod, name: string): Promise<string> {
  const cid = await b.client.createContainer(pod.id, sleeperContainer(name), pod.config);
  b.live.add(cid);
  pod.containers.push(cid);
  await b.client.startContainer(cid);
  await waitFor(async () => (await b.client.containerStatus(cid)).status?.state === cri.ContainerState.CONTAINER_RUNNING,
    { timeoutMs: 10_000, intervalMs: 5, what: `container ${cid} RUNNING` });
  return cid;
}

/** What kubelet does to remove a pod: StopContainer (SIGTERM; the sleeper exits 0), RemoveContainer, StopPodSandbox, RemovePodSandbox. */
export async function teardownPod(b: CriBench, pod: Pod): Promise<void> {
  for (const cid of pod.containers) await b.client.stopContainer(cid, 10);
  for (const cid of pod.containers) {
    await b.client.removeContainer(cid);
    b.live.delete(cid);
  }
  await b.client.stopPodSandbox(pod.id);
  await b.client.removePodSandbox(pod.id);
  b.live.delete(pod.id);
}

/** Binary name of a runtime's shim daemon. */
export function shimName(runtime: string): string {
  return runtime === RUNC ? "containerd-shim-runc-v2" : "containerd-shim-ts-v2";
}

/** The shim daemons of `runtime` serving this containerd (not transient `start`/`delete` runs). */
export function daemons(b: CriBench, runtime: string): number[] {
  return shimDaemons(b.c, shimName(runtime));
}

/** Waits until no shim daemon of either runtime serves this containerd (between measured rounds). */
export async function noDaemons(b: CriBench): Promise<void> {
  await waitFor(() => daemons(b, OURS).length + daemons(b, RUNC).length === 0,
    { timeoutMs: 20_000, intervalMs: 10, what: "every shim daemon to exit" });
}
