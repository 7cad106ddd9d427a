/**
 * A container: its init process, its execs, its bundle and rootfs mounts. Operations here run runc
 * and keep the process state machines; exit ordering is the ExitRouter's job.
 */
import { mkdir, unlink } from "node:fs/promises";
import path from "node:path";
import { isCode, notFound } from "../errdefs.js";
import type { Logger } from "../log.js";
import { readPidFile, type Runc } from "../runc/index.js";
import { mountAll, unmountRecursive } from "../sys/index.js";
import { readSpecFacts, writeRuntimeFiles, type SpecFacts } from "./bundle.js";
import type { TaskEvents } from "./events.js";
import type { ExitRouter, ExitTarget } from "./exits.js";
import { loadCgroup, type ContainerCgroup } from "../cgroups/index.js";
import { prepareIO, type PreparedIO } from "./io.js";
import { watchOom, type OomWatcher } from "./oom.js";
import type { RuntimeOptions } from "./options.js";
import { restoreInit, type RestoreSource } from "./checkpoint.js";
import { Proc, type StdioConfig } from "./process.js";

/** What containers share within one task service. */
export interface ContainerEnv {
  namespace: string;
  router: ExitRouter;
  events: TaskEvents;
  log: Logger;
  /** Pids libuv reaps itself (runc, logging binaries); the shim's reaper leaves them alone. */
  registry: { own(pid: number): void; disown(pid: number): void };
  runcFor(opts: RuntimeOptions): Runc;
}

export interface CreateParams extends StdioConfig {
  id: string;
  bundle: string;
  rootfs: { type: string; source: string; target?: string; options: string[] }[];
  options: RuntimeOptions;
  /** Create from a checkpoint: no `runc create`; Start runs `runc restore` from this image. */
  restoreFrom?: RestoreSource;
}

/** How long Delete waits for output to be copied out before closing it (containerd#12364). */
export const DRAIN_TIMEOUT_MS = 10_000;
/** Bound on the `runc kill --all` an init exit waits for in a shared pid namespace. */
export const KILL_ALL_MS = 10_000;

export class Container implements ExitTarget {
  liveExecs = 0;
  initExited = false;
  readonly execs = new Map<string, Proc>();
  /** The init's cgroup, found at create and kept until Delete (Stats works after the init exited). */
  cgroup: ContainerCgroup | undefined;
  private oom: OomWatcher | undefined;
  /** Set while a container created from a checkpoint waits for Start (state "created from checkpoint"). */
  restoreFrom: RestoreSource | undefined;

  private constructor(
    readonly id: string,
    readonly bundle: string,
    readonly init: Proc,
    readonly runc: Runc,
    readonly options: RuntimeOptions,
    readonly sharedPidNs: boolean,
    readonly sandboxId: string | undefined,
    private mounted: boolean,
    readonly env: ContainerEnv,
  ) {}

  get logFile(): string {
    return path.join(this.bundle, "log.json");
  }

  /** `runc create` with stdio and rootfs; publishes /tasks/create. */
  static async create(p: CreateParams, env: ContainerEnv, signal?: AbortSignal): Promise<Container> {
    const facts = await readSpecFacts(p.bundle);
    const runc = env.runcFor(p.options);
    if (p.restoreFrom !== undefined) return Container.createFromCheckpoint(p, env, runc, facts);
    let mounted = false;
    let io: PreparedIO | undefined;
    const early = env.router.subscribe();
    try {
      mounted = await prepareBundle(p, env.log);
      const stdio = { stdin: p.stdin, stdout: p.stdout, stderr: p.stderr, terminal: p.terminal };
      io = await prepareIO(stdio, ioOpts(p.id, env, p.options, signal));
      await runc.create(p.id, {
        bundle: p.bundle,
        pidFile: path.join(p.bundle, "init.pid"),
        consoleSocket: io.consoleSocket,
        noPivot: p.options.noPivotRoot,
        noNewKeyring: p.options.noNewKeyring,
        stdio: io.runcStdio,
        logFile: path.join(p.bundle, "log.json"),
        signal,
      });
      const init = new Proc(p.id, "", stdio);
      init.io = await io.ready({ signal });
      io = undefined;
      init.pid = await readPidFile(path.join(p.bundle, "init.pid"));
      const c = new Container(p.id, p.bundle, init, runc, p.options, facts.sharedPidNs, facts.sandboxId, mounted, env);
      await c.watchCgroup();
      env.events.create({
        containerId: p.id,
        bundle: p.bundle,
        rootfs: p.rootfs,
        io: { stdin: p.stdin, stdout: p.stdout, stderr: p.stderr, terminal: p.terminal },
        pid: init.pid,
      });
      early.started(c, init);
      return c;
    } catch (err) {
      early.close();
      io?.abort();
      await runc.delete(p.id, { force: true, logFile: path.join(p.bundle, "log.json") }).catch(() => {});
      if (mounted) tryUnmount(path.join(p.bundle, "rootfs"), env.log);
      throw err;
    }
  }

  /** Create with `checkpoint` set: mounts and runtime files only; pid 0 until Start restores it. */
  private static async createFromCheckpoint(p: CreateParams, env: ContainerEnv, runc: Runc, facts: SpecFacts): Promise<Container> {
    const mounted = await prepareBundle(p, env.log);
    const stdio = { stdin: p.stdin, stdout: p.stdout, stderr: p.stderr, terminal: p.terminal };
    const c = new Container(p.id, p.bundle, new Proc(p.id, "", stdio), runc, p.options, facts.sharedPidNs, facts.sandboxId, mounted, env);
    c.restoreFrom = p.restoreFrom;
    const checkpoint = p.restoreFrom?.imagePath ?? "";
    env.events.create({ containerId: p.id, bundle: p.bundle, rootfs: p.rootfs, io: { ...stdio }, checkpoint, pid: 0 });
    return c;
  }

  /** `runc start` of the init (`runc restore` if created from a checkpoint); publishes /tasks/start before any exit of it. */
  async start(signal?: AbortSignal): Promise<number> {
    this.init.require(["created"], "start");
    const early = this.env.router.subscribe();
    this.env.router.forget(this.init);
    try {
      const from = this.restoreFrom;
      if (from === undefined) await this.runc.start(this.id, { logFile: this.logFile, signal });
      else {
        this.init.pid = await restoreInit(this, from, ioOpts(this.id, this.env, this.options, signal), signal);
        this.restoreFrom = undefined;
        await this.watchCgroup();
      }
    } catch (err) {
      early.started(this, this.init);
      throw err;
    }
    if (this.init.status === "created") this.init.transition("running", "start");
    this.env.events.start(this.id, this.init.pid);
    early.started(this, this.init);
    return this.init.pid;
  }

  /** Delete of the init: allowed when created or stopped. Publishes /tasks/delete. */
  async delete(signal?: AbortSignal): Promise<Proc> {
    const init = this.init;
    init.require(["created", "stopped"], "delete");
    this.oom?.stop();
    this.oom = undefined;
    this.env.router.forget(init);
    if (init.io !== undefined && init.hasExited) {
      const drained = await init.io.drain({ timeoutMs: DRAIN_TIMEOUT_MS });
      if (!drained) this.env.log.warn("output not drained before delete", { id: this.id });
    }
    try {
      await this.runc.delete(this.id, { force: init.status === "created", logFile: this.logFile, signal });
    } catch (err) {
      if (!isCode(err, "NotFound")) throw err;
    }
    for (const e of this.execs.values()) e.io?.close();
    init.io?.close();
    if (this.mounted) tryUnmount(path.join(this.bundle, "rootfs"), this.env.log);
    this.mounted = false;
    init.status = "deleted";
    this.env.events.delete(this.id, init.pid, init.exitStatus, init.exitedAt);
    return init;
  }

  /** Kill of the init (`runc kill`, killed if `signal` aborts: the caller's deadline). An exited or deleted init is NotFound. */
  async kill(sig: number, all: boolean, signal?: AbortSignal): Promise<void> {
    if (this.init.status === "deleted" || this.init.hasExited) {
      throw notFound(`Cannot kill task "${this.id}": process already finished`);
    }
    await this.runc.kill(this.id, sig, { all, logFile: this.logFile, signal });
  }

  /** Looks up the init ("") or an exec; unknown exec ids are NotFound. */
  process(execId: string): Proc {
    if (execId === "") return this.init;
    const p = this.execs.get(execId);
    if (p === undefined) throw notFound(`Cannot find exec "${execId}" in task "${this.id}"`);
    return p;
  }

  /** Finds the init's cgroup and starts the OOM watcher (TaskOOM until the init exits); never throws. */
  async watchCgroup(): Promise<void> {
    this.cgroup = await loadCgroup(this.init.pid);
    this.oom?.stop();
    this.oom = watchOom(this.cgroup, () => this.env.events.oom(this.id), this.env.log);
  }

  /**
   * Called by the router when the init exit is seen, before its TaskExit: a pending OOM is published
   * first. Returns the kill-all's work, which the exit waits for.
   */
  onInitExit(): Promise<void> | undefined {
    this.oom?.stop({ flush: true });
    this.oom = undefined;
    return this.killAllOnExit();
  }

  /**
   * With a shared pid namespace nothing kills the init's children for us: `runc kill --all` does.
   * runc freezes the cgroup while it signals, and a `runc delete` meanwhile fails ("paused"), so
   * the init exit (and thus Wait and Delete) waits for it, bounded by {@link KILL_ALL_MS}.
   */
  killAllOnExit(): Promise<void> | undefined {
    if (!this.sharedPidNs) return undefined;
    return this.runc.kill(this.id, 9, { all: true, logFile: this.logFile, signal: AbortSignal.timeout(KILL_ALL_MS) }).catch((err: unknown) => {
      if (!isCode(err, "NotFound")) this.env.log.warn("kill --all after init exit failed", { id: this.id, err });
    });
  }

  /**
   * Called by the router when the init exit was held back for its bound: execs still starting are
   * aborted and exec processes still running are killed, so their exits (and then the init's) follow.
   */
  onHoldExpired(): void {
    this.env.log.warn("init exit held too long by execs: ending them", { id: this.id, liveExecs: this.liveExecs });
    for (const e of this.execs.values()) {
      if (e.starting !== undefined) e.starting.abort.abort(new Error("container init exited"));
      else if (e.status === "running" && !e.hasExited && e.pid > 0) {
        try {
          process.kill(e.pid, "SIGKILL");
        } catch {
          /* already gone */
        }
      }
    }
  }

  /** Removes a file we wrote, ignoring its absence. */
  static async removeQuietly(file: string): Promise<void> {
    await unlink(file).catch(() => {});
  }
}

/** IO options for a process of a container with these runtime options. */
export function ioOpts(id: string, env: ContainerEnv, o: RuntimeOptions, signal?: AbortSignal) {
  return { id, ns: env.namespace, uid: o.ioUid, gid: o.ioGid, log: env.log, registry: env.registry, signal };
}

/**
 * Mounts `p.rootfs` on `<bundle>/rootfs` and writes the files `delete` reads back. Returns whether it
 * mounted; on failure it has undone its own mounts.
 */
async function prepareBundle(p: CreateParams, log: Logger): Promise<boolean> {
  const rootfs = path.join(p.bundle, "rootfs");
  let mounted = false;
  try {
    if (p.rootfs.length > 0) {
      await mkdir(rootfs, { recursive: true, mode: 0o711 });
      mounted = true;
      mountAll(p.rootfs, rootfs);
    }
    await writeRuntimeFiles(p.bundle, p.options);
    return mounted;
  } catch (err) {
    if (mounted) tryUnmount(rootfs, log);
    throw err;
  }
}

function tryUnmount(rootfs: string, log: Logger): void {
  try {
    unmountRecursive(rootfs);
  } catch (err) {
    log.warn("unmount of rootfs failed", { rootfs, err });
  }
}
