// CRI pieces of the benchmarks: a private containerd with the CRI plugin where the default handler is ours
// (`io.containerd.ts.v2`), "runc" is containerd-shim-runc-v2 and, on 1.7, "shimmode" is ours in shim sandboxer
// mode; pods of busybox sleepers driven over CRI (test/helpers/cri.ts), and the shim daemons that serve them.
//
// Other helpers run CRI tests on this machine, and CRI keeps every containerd's containers in namespace k8s.io,
// whose runc root /run/containerd/runc/k8s.io the harness's stop() empties (`runc delete --force` of every id).
// So the bench never hands k8s.io to the harness (images are imported with a plain ctr), its pods get the
// cgroup parent /<bench namespace>, and both runtimes get a private runc root through their runtime options:
// `Root` for runc-v2, a `ConfigPath` file with `Root` for ours (the only way CRI passes options to a non-runc
// runtime type; it costs ours the config module in `start`, ~2.5 ms, and a small file read per Create).
// In shim sandboxer mode the pause process still runs under /run/containerd/runc/k8s.io (src/sandbox).
import { readdirSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { runCapture, startContainerd } from "../test/helpers/containerd.js";
import { CRI_NS, CriClient, cri, hostNetworkPod, shimDaemons, sleeperContainer, type PodSandboxConfig } from "../test/helpers/cri.js";
import { busyboxImageTar, pauseImageTar } from "../test/helpers/image.js";
import { waitFor } from "../test/helpers/wait.js";
import { OURS, RUNC, ctrCommand, idleSpares, shimBinary, shimEnv, type Containerd, type ContainerdVersion } from "./lib.js";

/** CRI runtime handlers of a bench containerd. */
export const HANDLER = { ours: "", runc: "runc", shimMode: "shimmode" } as const;
export type Handler = (typeof HANDLER)[keyof typeof HANDLER];

/** The CRI runtime tables of `v`'s config. */
const runtimesTable = (v: ContainerdVersion): string =>
  `plugins."${v === "2.1" ? "io.containerd.cri.v1.runtime" : "io.containerd.grpc.v1.cri"}".containerd.runtimes`;

/** Options tables added to the harness's config: private runc root for both runtimes; 1.7 shim sandboxer handler. */
function extraConfig(v: ContainerdVersion, runcRoot: string, tsConfig: string, shimMode: boolean): string {
  const t = runtimesTable(v);
  let out = `[${t}.test.options]\n  ConfigPath = ${JSON.stringify(tsConfig)}\n` +
    `[${t}.runc.options]\n  Root = ${JSON.stringify(runcRoot)}\n`;
  if (shimMode) { // protocol.md §6.1
    out += `[${t}.${HANDLER.shimMode}]\n  runtime_type = "${OURS}"\n  sandbox_mode = "shim"\n` +
      `[${t}.${HANDLER.shimMode}.options]\n  ConfigPath = ${JSON.stringify(tsConfig)}\n`;
  }
  return out;
}

export interface CriBench {
  readonly c: Containerd;
  readonly client: CriClient;
  /** The runc root both runtimes use (the namespace k8s.io is appended), and the temp dir of ours' config file. */
  readonly runcRoot: string;
  readonly tmp: string;
}

export interface Pod { id: string; config: PodSandboxConfig; containers: string[] }

/** A CRI containerd `v` with `env` (reaches every shim's `start`); `shimMode` adds the 1.7 shim sandboxer handler. */
export async function criContainerd(v: ContainerdVersion, opts: { env?: Record<string, string>; shimMode?: boolean } = {}): Promise<CriBench> {
  if (process.getuid?.() !== 0) throw new Error("benchmarks need root");
  if (opts.shimMode && v !== "1.7") throw new Error("shim sandboxer mode is measured on containerd 1.7 only");
  const env = shimEnv({ ...opts.env, ...(opts.shimMode ? { ENABLE_CRI_SANDBOXES: "1" } : {}) });
  const tmp = await mkdtemp(path.join(tmpdir(), "bench-cri-"));
  const runcRoot = `/run/containerd/runc-${path.basename(tmp)}`;
  const tsConfig = path.join(tmp, "ts.toml");
  await writeFile(tsConfig, `Root = ${JSON.stringify(runcRoot)}\n`);
  let c: Containerd;
  try {
    c = await startContainerd(v, {
      cri: true, runtime: OURS, namespace: `bench-${process.pid}`, images: [], env, shimBinary: shimBinary(),
      extraConfig: extraConfig(v, runcRoot, tsConfig, opts.shimMode === true),
    });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  const b = { c, runcRoot, tmp } as Omit<CriBench, "client"> & { client?: CriClient };
  try {
    for (const tar of [await busyboxImageTar(), await pauseImageTar()]) {
      const [cmd, args] = ctrCommand(c, ["images", "import", "--all-platforms", tar]);
      args[args.indexOf("-n") + 1] = CRI_NS;
      const r = await runCapture(cmd, args, { timeoutMs: 60_000 });
      if (r.code !== 0) throw new Error(`ctr images import ${tar} into ${CRI_NS}: ${r.stderr}`);
    }
    b.client = await CriClient.connect(c.address);
    return b as CriBench;
  } catch (err) {
    await stopCri(b);
    throw err;
  }
}

/** Stops containerd, then deletes what is left in the private runc root (see the file header). */
export async function stopCri(b: Omit<CriBench, "client"> & { client?: CriClient }): Promise<void> {
  b.client?.close();
  try {
    await b.c.stop(); // kills our shims and container processes (they refer to its directory), not k8s.io's others
  } finally {
    const root = path.join(b.runcRoot, CRI_NS);
    let ids: string[] = [];
    try {
      ids = readdirSync(root);
    } catch { /* never created */ }
    for (const id of ids) await runCapture("runc", ["--root", root, "delete", "--force", id], { timeoutMs: 10_000 });
    await rm(b.runcRoot, { recursive: true, force: true });
    await rm(b.tmp, { recursive: true, force: true });
  }
}

/** RunPodSandbox with `handler`, then `n` sleeper containers created and started, each RUNNING. */
export async function runPod(b: CriBench, handler: Handler, name: string, n: number): Promise<Pod> {
  const logDir = path.join(b.c.dir, "pods", name);
  await mkdir(logDir, { recursive: true });
  const base = hostNetworkPod(name, logDir);
  const config: PodSandboxConfig = { ...base, linux: { ...base.linux, cgroupParent: `/${b.c.namespace}` } };
  const id = await b.client.runPodSandbox(config, handler);
  const pod: Pod = { id, config, containers: [] };
  for (let i = 0; i < n; i++) await addContainer(b, pod, `c${i}`);
  return pod;
}

/** Creates and starts one more sleeper container in `pod`; resolves once CRI reports it RUNNING. */
export async function addContainer(b: CriBench, pod: Pod, name: string): Promise<string> {
  const cid = await b.client.createContainer(pod.id, sleeperContainer(name), pod.config);
  pod.containers.push(cid);
  await b.client.startContainer(cid);
  await waitFor(async () => (await b.client.containerStatus(cid)).status?.state === cri.ContainerState.CONTAINER_RUNNING,
    { timeoutMs: 10_000, intervalMs: 5, what: `container ${cid} RUNNING` });
  return cid;
}

/**
 * What kubelet does to remove a pod: StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox.
 * StopContainer with timeout 0 (SIGKILL): a SIGTERM right after StartContainer can reach the sleeper's shell
 * before it has set its trap, and pid 1 of a pid namespace ignores it; the stop then waits out its timeout.
 */
export async function teardownPod(b: CriBench, pod: Pod): Promise<void> {
  for (const cid of pod.containers) await b.client.stopContainer(cid, 0);
  for (const cid of pod.containers) await b.client.removeContainer(cid);
  await b.client.stopPodSandbox(pod.id);
  await b.client.removePodSandbox(pod.id);
}

/** Binary name of a runtime's shim daemon. */
export function shimName(runtime: string): string {
  return runtime === RUNC ? "containerd-shim-runc-v2" : "containerd-shim-ts-v2";
}

/** The shim daemons of `runtime` serving this containerd (not transient `start`/`delete` runs). */
export function daemons(b: CriBench, runtime: string): number[] {
  return shimDaemons(b.c, shimName(runtime));
}

/** Our daemons that serve pods: all but an idle warm spare (`--warm`), which stays for its idle time. */
export function podDaemons(b: CriBench): number[] {
  const ours = daemons(b, OURS);
  const spares = new Set(idleSpares(ours));
  return ours.filter((p) => !spares.has(p));
}

/** Waits until no shim daemon of either runtime serves a pod here, or only `left` (resident pods' ones). */
export async function noDaemons(b: CriBench, left = 0): Promise<void> {
  await waitFor(() => podDaemons(b).length + daemons(b, RUNC).length === left,
    { timeoutMs: 20_000, intervalMs: 10, what: left === 0 ? "every shim daemon to exit" : `all but ${left} shim daemons to exit` });
}
