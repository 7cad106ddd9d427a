/**
 * containerd.runtime.sandbox.v1.Sandbox (protocol.md §6): a thin adapter from protobuf requests to
 * {@link Sandbox} objects, one per sandbox id, held from CreateSandbox until ShutdownSandbox.
 */
import { loadCgroup, readStats } from "../cgroups/index.js";
import { readFileSync } from "node:fs";
import { alreadyExists, failedPrecondition, notFound } from "../errdefs.js";
import { validateId } from "../ids.js";
import { containerd, type google } from "../gen/sandbox.js";
import type { Logger } from "../log.js";
import { Runc } from "../runc/index.js";
import type { ChildRegistry, Reaper } from "../sys/index.js";
import { unary, type Method } from "../ttrpc/index.js";
import { sandboxFiles, writeSandboxBundle } from "./bundle.js";
import { decodePodSandboxConfig } from "./config.js";
import { CriRoot } from "./criroot.js";
import { podFilePaths, removePodFiles, writePodFiles, type PodFilePaths } from "./podfiles.js";
import { platform } from "./platform.js";
import { Sandbox, type SandboxState } from "./sandbox.js";
import { buildSandboxSpec, capsFromMask } from "./spec.js";

const S = containerd.runtime.sandbox.v1;

/** The service name the methods are registered under. */
export const SANDBOX_SERVICE = "containerd.runtime.sandbox.v1.Sandbox";

/** Go's zero time (0001-01-01), which containerd reads as "unset" (`time.IsZero`). */
export const ZERO_TIME: google.protobuf.Timestamp.$Properties = { seconds: -62135596800, nanos: 0 };

/** A Date as a protobuf Timestamp; undefined as {@link ZERO_TIME}. */
export function timestamp(d: Date | undefined): google.protobuf.Timestamp.$Properties {
  if (d === undefined) return ZERO_TIME;
  const ms = d.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

/** What the sandbox service needs from the shim. */
export interface SandboxServiceDeps {
  namespace: string;
  reaper: Pick<Reaper, "subscribe" | "onExit"> & ChildRegistry;
  log: Logger;
  /** runc binary; default `runc`. */
  runcBinary?: string;
  /** runc state root (the namespace is appended); default `/run/containerd/runc`, as the task service's. */
  runcRoot?: string;
  /** The statically linked pause binary copied into every sandbox; default `/usr/bin/catatonit`. */
  pauseBinary?: string;
  /**
   * containerd's gRPC socket (the shim's `-address`), asked where the CRI root is to write a CRI pod's
   * hostname, hosts and resolv.conf (src/sandbox/podfiles.ts); absent or "": `/var/lib/containerd`.
   */
  containerdAddress?: string;
  /** Refuses bundle paths outside containerd's bundle directories (src/bundle-scope.ts); default: none. */
  bundleScope?: { check(bundle: string, what: string): void };
}

/** One sandbox as the daemon's state dump shows it. */
export interface SandboxSnapshot {
  id: string;
  state: SandboxState;
  /** The pause process's pid (0 before StartSandbox). */
  pid: number;
  bundle: string;
  netns: string;
  startedAt?: string;
  exitStatus?: number;
  exitedAt?: string;
}

/** The sandbox service of one daemon: every sandbox it holds. */
export interface SandboxServiceSnapshot {
  sandboxes: SandboxSnapshot[];
  /** Ids reserved by a CreateSandbox still running. */
  creating: string[];
}

function sandboxSnapshot(sb: Sandbox): SandboxSnapshot {
  const s: SandboxSnapshot = { id: sb.id, state: sb.state, pid: sb.pid, bundle: sb.files.bundle, netns: sb.netnsPath };
  if (sb.createdAt !== undefined) s.startedAt = sb.createdAt.toISOString();
  if (sb.exitInfo !== undefined) {
    s.exitStatus = sb.exitInfo.status;
    s.exitedAt = sb.exitInfo.at.toISOString();
  }
  return s;
}

/** The shim's effective capabilities, or undefined when /proc cannot tell. */
function currentCaps(): string[] | undefined {
  try {
    const hex = /^CapEff:\s+([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
    return hex === undefined ? undefined : capsFromMask(hex);
  } catch {
    return undefined;
  }
}

/** The sandbox service of one shim: every sandbox it holds. */
export class SandboxService {
  private readonly sandboxes = new Map<string, Sandbox>();
  private readonly creating = new Set<string>();
  private readonly shutdownCbs: (() => void)[] = [];
  private readonly runc: Runc;
  private readonly closed = new AbortController();
  private readonly criRoot: CriRoot;
  /** The pod files written for each CRI sandbox, removed at ShutdownSandbox. */
  private readonly podFiles = new Map<string, PodFilePaths>();

  constructor(private readonly deps: SandboxServiceDeps) {
    this.runc = new Runc({
      binary: deps.runcBinary ?? "runc",
      root: `${deps.runcRoot ?? "/run/containerd/runc"}/${deps.namespace}`,
      registry: deps.reaper,
      log: deps.log,
    });
    this.criRoot = new CriRoot(deps.containerdAddress ?? "", deps.log);
  }

  /** Sandboxes held (created and not yet shut down). */
  get size(): number {
    return this.sandboxes.size + this.creating.size;
  }

  /** A plain copy of what the service holds, for the daemon's state dump. */
  snapshot(): SandboxServiceSnapshot {
    return { sandboxes: [...this.sandboxes.values()].map(sandboxSnapshot), creating: [...this.creating] };
  }

  /** `cb` runs after every ShutdownSandbox that leaves no sandbox held (after the answer is sent). */
  onShutdownRequested(cb: () => void): void {
    this.shutdownCbs.push(cb);
  }

  /** Ends every pending WaitSandbox (daemon exit). Sandboxes themselves are left running. */
  close(): void {
    this.closed.abort(new Error("Shim is shutting down"));
  }

  /** The Sandbox methods, to register under {@link SANDBOX_SERVICE}. */
  methods(): Record<string, Method> {
    return {
      CreateSandbox: unary(S.CreateSandboxRequest, S.CreateSandboxResponse, (r, ctx) => this.create(r, ctx.signal)),
      StartSandbox: unary(S.StartSandboxRequest, S.StartSandboxResponse, async (r, ctx) => {
        const sb = this.get(r.sandboxId);
        const pid = await sb.start(ctx.signal);
        return { pid, createdAt: timestamp(sb.createdAt) };
      }),
      Platform: unary(S.PlatformRequest, S.PlatformResponse, (r) => (this.get(r.sandboxId), { platform: platform() })),
      StopSandbox: unary(S.StopSandboxRequest, S.StopSandboxResponse, async (r, ctx) => {
        await this.get(r.sandboxId).stop(r.timeoutSecs, ctx.signal);
        return {};
      }),
      WaitSandbox: unary(S.WaitSandboxRequest, S.WaitSandboxResponse, async (r, ctx) => {
        const e = await this.get(r.sandboxId).wait(AbortSignal.any([ctx.signal, this.closed.signal]));
        return { exitStatus: e.status, exitedAt: timestamp(e.at) };
      }),
      SandboxStatus: unary(S.SandboxStatusRequest, S.SandboxStatusResponse, (r) => this.status(r.sandboxId, r.verbose)),
      PingSandbox: unary(S.PingRequest, S.PingResponse, (r) => (this.get(r.sandboxId), {})),
      ShutdownSandbox: unary(S.ShutdownSandboxRequest, S.ShutdownSandboxResponse, (r, ctx) => this.shutdown(r.sandboxId, ctx.signal)),
      SandboxMetrics: unary(S.SandboxMetricsRequest, S.SandboxMetricsResponse, (r) => this.metrics(r.sandboxId)),
    };
  }

  /** The pause process's cgroup metrics (v1 or v2 Metrics in an Any); just the id and time once it is gone. */
  private async metrics(id: string) {
    const sb = this.get(id);
    const metric = { id, timestamp: timestamp(new Date()) };
    const cg = sb.pid > 0 ? await loadCgroup(sb.pid).catch(() => undefined) : undefined;
    if (cg === undefined) return { metrics: metric };
    return { metrics: { ...metric, data: await readStats(cg) } };
  }

  /** The sandbox `id`: InvalidArgument if malformed, NotFound if unknown (or not created yet). */
  private get(id: string): Sandbox {
    validateId(id, "sandbox");
    const sb = this.sandboxes.get(id);
    if (sb === undefined) throw notFound(`Cannot find sandbox "${id}"`);
    return sb;
  }

  private async create(r: containerd.runtime.sandbox.v1.CreateSandboxRequest, signal: AbortSignal) {
    const id = r.sandboxId;
    if (this.sandboxes.has(id) || this.creating.has(id)) throw alreadyExists(`Cannot create sandbox "${id}": already exists`);
    validateId(id, "sandbox");
    if (r.bundlePath === "") throw failedPrecondition(`Cannot create sandbox "${id}": no bundle path`);
    this.deps.bundleScope?.check(r.bundlePath, `sandbox "${id}"`);
    if (r.rootfs.length > 0) this.deps.log.warn("ignoring sandbox rootfs mounts", { id, count: r.rootfs.length });
    this.creating.add(id);
    try {
      const config = decodePodSandboxConfig(r.options);
      const spec = buildSandboxSpec({
        id,
        config,
        netnsPath: r.netnsPath,
        defaultCgroupParent: `/${this.deps.namespace}`,
        ...withCurrentCaps(),
      });
      const files = sandboxFiles(r.bundlePath);
      await writeSandboxBundle(files, spec, this.deps.pauseBinary ?? "/usr/bin/catatonit");
      // Only CRI sends a PodSandboxConfig, and only CRI mounts these files into its containers.
      if ((r.options?.typeUrl ?? "") !== "") {
        const paths = podFilePaths(await this.criRoot.get(signal), id);
        await writePodFiles(paths, config);
        this.podFiles.set(id, paths);
      }
      this.sandboxes.set(id, new Sandbox(id, files, r.netnsPath, { runc: this.runc, reaper: this.deps.reaper, log: this.deps.log }));
      this.deps.log.info("sandbox created", { id, bundle: r.bundlePath, netns: r.netnsPath });
      return {};
    } finally {
      this.creating.delete(id);
    }
  }

  private status(id: string, verbose: boolean) {
    const sb = this.get(id);
    const info: Record<string, string> = {};
    if (verbose) {
      const facts = { pid: sb.pid, bundle: sb.files.bundle, runtime: "runc", state: sb.state, netns: sb.netnsPath };
      // Flat strings for readers of the map, and CRI's convention: one "info" key holding JSON (crictl inspectp).
      for (const [k, v] of Object.entries(facts)) info[k] = String(v);
      info["info"] = JSON.stringify(facts);
    }
    return {
      sandboxId: id,
      pid: sb.pid,
      state: sb.state === "running" ? "SANDBOX_READY" : "SANDBOX_NOTREADY",
      info,
      createdAt: timestamp(sb.createdAt),
      exitedAt: timestamp(sb.exitInfo?.at),
    };
  }

  private async shutdown(id: string, signal: AbortSignal) {
    const sb = this.get(id);
    await sb.shutdown(signal);
    const pod = this.podFiles.get(id);
    if (pod !== undefined) await removePodFiles(pod);
    this.podFiles.delete(id);
    this.sandboxes.delete(id);
    this.deps.log.info("sandbox shut down", { id });
    if (this.size === 0) for (const cb of this.shutdownCbs) setImmediate(cb);
    return {};
  }
}

function withCurrentCaps(): { currentCaps?: string[] } {
  const caps = currentCaps();
  return caps === undefined ? {} : { currentCaps: caps };
}
