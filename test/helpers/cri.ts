// A small Kubernetes CRI client for e2e tests: grpc-js unary calls encoded with the static protobufjs codecs
// of proto/k8s/cri/v1 (group `cri`). It talks to containerd's gRPC socket, like crictl would.
import * as grpc from "@grpc/grpc-js";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { chmod, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { runtime } from "../../src/gen/cri.js";
import { BUSYBOX_REF, RUNTIME, SHIM_BINARY, type Containerd } from "./containerd.js";
import { waitFor } from "./wait.js";

export const cri = runtime.v1;
export type PodSandboxConfig = runtime.v1.PodSandboxConfig.$Properties;
export type ContainerConfig = runtime.v1.ContainerConfig.$Properties;
export type ContainerStatus = runtime.v1.ContainerStatus;
export type PodSandboxStatus = runtime.v1.PodSandboxStatus;

interface Encoder<T> { encode(m: T): { finish(): Uint8Array } }
interface Decoder<T> { decode(b: Uint8Array): T }

/** A failed CRI call: the gRPC status code and details, named by method. */
export class CriError extends Error {
  constructor(readonly method: string, readonly code: number, readonly details: string) {
    super(`CRI ${method} failed: ${details} (${grpc.status[code] ?? code})`);
  }
}

export interface CallOptions { timeoutMs?: number }

const RUNTIME_SERVICE = "/runtime.v1.RuntimeService/";
const IMAGE_SERVICE = "/runtime.v1.ImageService/";

export class CriClient {
  private constructor(private readonly client: grpc.Client) {}

  /** Connects to `socket` (a path) and waits until CRI answers Version (the plugin may still be loading). */
  static async connect(socket: string, opts: { timeoutMs?: number } = {}): Promise<CriClient> {
    const client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
    const c = new CriClient(client);
    try {
      await waitFor(() => c.version({ timeoutMs: 2000 }).then(() => true),
        { timeoutMs: opts.timeoutMs ?? 20_000, intervalMs: 50, what: `CRI Version on ${socket}` });
    } catch (err) {
      client.close();
      throw err;
    }
    return c;
  }

  close(): void { this.client.close(); }

  private unary<Req, Res>(path: string, req: Encoder<Req>, res: Decoder<Res>, value: Req, o: CallOptions = {}): Promise<Res> {
    const method = path.slice(path.lastIndexOf("/") + 1);
    const deadline = new Date(Date.now() + (o.timeoutMs ?? 60_000));
    return new Promise<Res>((resolve, reject) => {
      this.client.makeUnaryRequest<Req, Res>(path, (m) => Buffer.from(req.encode(m).finish()), (b) => res.decode(b),
        value, new grpc.Metadata(), { deadline }, (err, out) => {
          if (err) reject(new CriError(method, err.code, err.details));
          else if (out === undefined) reject(new CriError(method, grpc.status.INTERNAL, "empty response"));
          else resolve(out);
        });
    });
  }

  version(o?: CallOptions): Promise<runtime.v1.VersionResponse> {
    return this.unary(`${RUNTIME_SERVICE}Version`, cri.VersionRequest, cri.VersionResponse, { version: "v1" }, o);
  }

  /** CRI Status: runtime conditions and, on containerd 2.x, the features found for each runtime handler. */
  status(o?: CallOptions): Promise<runtime.v1.StatusResponse> {
    return this.unary(`${RUNTIME_SERVICE}Status`, cri.StatusRequest, cri.StatusResponse, { verbose: false }, o);
  }

  async runPodSandbox(config: PodSandboxConfig, runtimeHandler = "", o?: CallOptions): Promise<string> {
    const r = await this.unary(`${RUNTIME_SERVICE}RunPodSandbox`, cri.RunPodSandboxRequest, cri.RunPodSandboxResponse,
      { config, runtimeHandler }, o);
    return r.podSandboxId;
  }

  async stopPodSandbox(podSandboxId: string, o?: CallOptions): Promise<void> {
    await this.unary(`${RUNTIME_SERVICE}StopPodSandbox`, cri.StopPodSandboxRequest, cri.StopPodSandboxResponse, { podSandboxId }, o);
  }

  async removePodSandbox(podSandboxId: string, o?: CallOptions): Promise<void> {
    await this.unary(`${RUNTIME_SERVICE}RemovePodSandbox`, cri.RemovePodSandboxRequest, cri.RemovePodSandboxResponse, { podSandboxId }, o);
  }

  podSandboxStatus(podSandboxId: string, verbose = false, o?: CallOptions): Promise<runtime.v1.PodSandboxStatusResponse> {
    return this.unary(`${RUNTIME_SERVICE}PodSandboxStatus`, cri.PodSandboxStatusRequest, cri.PodSandboxStatusResponse,
      { podSandboxId, verbose }, o);
  }

  async listPodSandbox(filter: runtime.v1.PodSandboxFilter.$Properties = {}, o?: CallOptions): Promise<runtime.v1.PodSandbox[]> {
    const r = await this.unary(`${RUNTIME_SERVICE}ListPodSandbox`, cri.ListPodSandboxRequest, cri.ListPodSandboxResponse, { filter }, o);
    return r.items as runtime.v1.PodSandbox[];
  }

  async createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig, o?: CallOptions): Promise<string> {
    const r = await this.unary(`${RUNTIME_SERVICE}CreateContainer`, cri.CreateContainerRequest, cri.CreateContainerResponse,
      { podSandboxId, config, sandboxConfig }, o);
    return r.containerId;
  }

  async startContainer(containerId: string, o?: CallOptions): Promise<void> {
    await this.unary(`${RUNTIME_SERVICE}StartContainer`, cri.StartContainerRequest, cri.StartContainerResponse, { containerId }, o);
  }

  /** Stops with SIGTERM, then SIGKILL after `timeoutSec` (0: SIGKILL at once). */
  async stopContainer(containerId: string, timeoutSec: number, o?: CallOptions): Promise<void> {
    await this.unary(`${RUNTIME_SERVICE}StopContainer`, cri.StopContainerRequest, cri.StopContainerResponse,
      { containerId, timeout: timeoutSec }, o);
  }

  async removeContainer(containerId: string, o?: CallOptions): Promise<void> {
    await this.unary(`${RUNTIME_SERVICE}RemoveContainer`, cri.RemoveContainerRequest, cri.RemoveContainerResponse, { containerId }, o);
  }

  async listContainers(filter: runtime.v1.ContainerFilter.$Properties = {}, o?: CallOptions): Promise<runtime.v1.Container[]> {
    const r = await this.unary(`${RUNTIME_SERVICE}ListContainers`, cri.ListContainersRequest, cri.ListContainersResponse, { filter }, o);
    return r.containers as runtime.v1.Container[];
  }

  containerStatus(containerId: string, verbose = false, o?: CallOptions): Promise<runtime.v1.ContainerStatusResponse> {
    return this.unary(`${RUNTIME_SERVICE}ContainerStatus`, cri.ContainerStatusRequest, cri.ContainerStatusResponse,
      { containerId, verbose }, o);
  }

  /** Runs `cmd` in the container; resolves with its output (as text) and exit code. */
  async execSync(containerId: string, cmd: string[], timeoutSec = 10, o?: CallOptions): Promise<{ stdout: string; stderr: string; exitCode: number }> {
    const r = await this.unary(`${RUNTIME_SERVICE}ExecSync`, cri.ExecSyncRequest, cri.ExecSyncResponse,
      { containerId, cmd, timeout: timeoutSec }, { timeoutMs: (timeoutSec + 20) * 1000, ...o });
    return { stdout: Buffer.from(r.stdout).toString("utf8"), stderr: Buffer.from(r.stderr).toString("utf8"), exitCode: r.exitCode };
  }

  async listImages(o?: CallOptions): Promise<runtime.v1.Image[]> {
    const r = await this.unary(`${IMAGE_SERVICE}ListImages`, cri.ListImagesRequest, cri.ListImagesResponse, {}, o);
    return r.images as runtime.v1.Image[];
  }

  /** The image, or undefined when CRI does not know it. */
  async imageStatus(image: string, o?: CallOptions): Promise<runtime.v1.Image | undefined> {
    const r = await this.unary(`${IMAGE_SERVICE}ImageStatus`, cri.ImageStatusRequest, cri.ImageStatusResponse, { image: { image } }, o);
    return (r.image ?? undefined) as runtime.v1.Image | undefined;
  }
}

/** The `pid` in the JSON `info` entry of a verbose PodSandboxStatus or ContainerStatus (0 when absent). */
export function infoPid(info: Record<string, string> | null | undefined): number {
  const raw = info?.["info"];
  if (!raw) return 0;
  const pid = (JSON.parse(raw) as { pid?: unknown }).pid;
  return typeof pid === "number" ? pid : 0;
}

// ---- pods for e2e tests ----

/** The namespace CRI keeps its containers in. */
export const CRI_NS = "k8s.io";

/** Daemon binary name of a runtime type (io.containerd.X.v2 -> containerd-shim-X-v2). */
export function shimBinaryName(runtimeType = RUNTIME): string {
  const [, , name, version] = runtimeType.split(".");
  return `containerd-shim-${name}-${version}`;
}

/** Shim daemons (not `start`/`delete` runs) serving containerd `c`, found by their command line. */
export function shimDaemons(c: Containerd, name = shimBinaryName()): number[] {
  const out: number[] = [];
  for (const p of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").filter((a) => a !== "");
      const addr = argv.indexOf("-address");
      if (!argv.some((a) => path.basename(a) === name) || addr < 0 || argv[addr + 1] !== c.address) continue;
      if (!["start", "delete"].includes(argv[argv.length - 1]!)) out.push(Number(p));
    } catch { /* exited */ }
  }
  return out;
}

/** Task pids of namespace k8s.io, from `ctr task ls`. */
export async function criTaskPids(c: Containerd): Promise<Map<string, number>> {
  const r = await c.ctr(["task", "ls"], { ns: CRI_NS });
  if (r.code !== 0) throw new Error(`ctr task ls: ${r.stderr}`);
  const out = new Map<string, number>();
  for (const line of r.stdout.split("\n").slice(1)) {
    const [id, pid] = line.trim().split(/\s+/);
    if (id && pid) out.set(id, Number(pid));
  }
  return out;
}

export interface ShimRun { action: string; ms: number; rc: number }

/**
 * Replaces our shim on containerd's PATH (`<dir>/bin`) with a wrapper that appends
 * "<action> <t0 ns> <t1 ns> <rc>" to `<dir>/shim-calls.log` for every run of the binary. Returns a reader
 * of the runs so far. (The daemon is spawned by `start` directly, not through the wrapper.)
 */
export async function instrumentShim(c: Containerd): Promise<() => ShimRun[]> {
  const log = path.join(c.dir, "shim-calls.log");
  const wrapper = path.join(c.dir, "bin", "containerd-shim-ts-v2");
  const real = JSON.stringify(SHIM_BINARY);
  await rm(wrapper, { force: true });
  await writeFile(wrapper, `#!/bin/sh
for last; do :; done
t0=$(date +%s%N)
${real} "$@"; rc=$?
echo "$last $t0 $(date +%s%N) $rc" >> ${JSON.stringify(log)}
exit $rc
`);
  await chmod(wrapper, 0o755);
  return () => (existsSync(log) ? readFileSync(log, "utf8") : "").split("\n").filter(Boolean).map((l) => {
    const [action, t0, t1, rc] = l.split(" ");
    return { action: action!, ms: Number((BigInt(t1!) - BigInt(t0!)) / 1000n) / 1000, rc: Number(rc) };
  });
}

const HOST_NETWORK = { network: cri.NamespaceMode.NODE, pid: cri.NamespaceMode.CONTAINER, ipc: cri.NamespaceMode.POD };

/** A host-network pod (no hostname: no UTS namespace, protocol.md §11 item 11) in cgroup /k8s.io. */
export function hostNetworkPod(name: string, logDirectory: string): PodSandboxConfig {
  return {
    metadata: { name, uid: randomBytes(8).toString("hex"), namespace: "e2e", attempt: 0 },
    logDirectory,
    linux: { cgroupParent: `/${CRI_NS}`, securityContext: { namespaceOptions: HOST_NETWORK } },
  };
}

/** A busybox container that exits 0 on SIGTERM at once (the shell waits on a background sleep). */
export function sleeperContainer(name: string): ContainerConfig {
  return {
    metadata: { name, attempt: 0 },
    image: { image: BUSYBOX_REF },
    command: ["sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"],
    logPath: `${name}.log`,
    linux: { securityContext: { namespaceOptions: HOST_NETWORK } },
  };
}

/** What a container sees of its pod's files (each file's text, or the error `cat` gave) and its `hostname`. */
export interface PodFilesSeen { resolvConf: string; hosts: string; etcHostname: string; hostname: string }

const SEEN_SCRIPT = 'for f in /etc/resolv.conf /etc/hosts /etc/hostname; do cat "$f" 2>&1; echo "@@"; done; hostname';

/** Reads /etc/resolv.conf, /etc/hosts, /etc/hostname and `hostname` in running container `containerId`. */
export async function podFilesSeen(c: CriClient, containerId: string): Promise<PodFilesSeen> {
  const r = await c.execSync(containerId, ["sh", "-c", SEEN_SCRIPT]);
  if (r.exitCode !== 0) throw new Error(`reading the pod files in ${containerId} failed (${r.exitCode}): ${r.stderr}`);
  const [resolvConf = "", hosts = "", etcHostname = "", hostname = ""] = r.stdout.split("@@\n");
  return { resolvConf, hosts, etcHostname, hostname: hostname.trim() };
}
