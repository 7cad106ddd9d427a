/**
 * containerd.task.v2.Task / containerd.task.v3.Task: a thin adapter from protobuf requests to
 * containers and processes (container.ts, exec.ts, control.ts, checkpoint.ts). State is answered from
 * memory (containerd gives it 2 s).
 */
import { existsSync } from "node:fs";
import { failedPrecondition, notFound, unimplemented } from "../errdefs.js";
import { containerd as boot, runtimeoptions } from "../gen/bootstrap.js";
import { containerd, google } from "../gen/task.js";
import type { Logger } from "../log.js";
import { Runc } from "../runc/index.js";
import type { Exit, Reaper } from "../sys/index.js";
import { unary, type CallContext, type Method } from "../ttrpc/index.js";
import { validateId } from "./bundle.js";
import { Container, type ContainerEnv } from "./container.js";
import { pauseTask, resumeTask, taskPids, updateTask } from "./control.js";
import { TaskEvents, timestamp, ZERO_TIME, type Publisher } from "./events.js";
import { addExec, deleteExec, killExec, startExec } from "./exec.js";
import { ExitRouter, type ExitLimits } from "./exits.js";
import { checkOptions, parseOptions, type ConfigLoader, type RuntimeOptions } from "./options.js";
import { checkpointTask, parseCheckpointOptions } from "./checkpoint.js";
import type { Proc, Status } from "./process.js";
import { taskSnapshot, type TaskSnapshot } from "./snapshot.js";
import { readStats } from "../cgroups/index.js";

const T = containerd.task.v2;
const Empty = google.protobuf.Empty;
/** How long a process's exit waits for its output to reach the FIFO's reader (see ProcessIO.settle). */
const EXIT_SETTLE_MS = 2000;
const STATUS: Record<Status, number> = { created: 1, running: 2, stopped: 3, paused: 4, pausing: 5, deleted: 3 };

export interface TaskServiceDeps {
  namespace: string;
  reaper: Pick<Reaper, "onExit"> & { own(pid: number): void; disown(pid: number): void };
  publisher: Publisher;
  log: Logger;
  shimPid: number;
  /** Loads the shim config file for each Create (src/shim/config/config.ts); default: no file. */
  loadConfig?: ConfigLoader;
  /** Bounds of the exit router's waits (tests shorten them); defaults in exits.ts. */
  exitLimits?: Partial<ExitLimits>;
  /** Refuses Create bundles outside containerd's bundle directories (src/bundle-scope.ts); default: none. */
  bundleScope?: { check(bundle: string, what: string): void };
}

/** The task service of one shim: every container it holds. */
export class TaskService {
  private readonly containers = new Map<string, Container>();
  private readonly creating = new Set<string>();
  private readonly router: ExitRouter;
  private readonly env: ContainerEnv;
  private readonly shutdownCbs: (() => void)[] = [];
  private shutdownRequested = false;

  constructor(private readonly deps: TaskServiceDeps) {
    const events = new TaskEvents(deps.publisher);
    this.router = new ExitRouter(
      (_t, p: Proc, e: Exit) => events.exit(p.containerId, p.id, p.pid, e.status, e.at),
      (t) => (t as Container).onInitExit(),
      // The output is read before the exit is known: ctr stops reading the FIFOs once it has the exit.
      (p: Proc) => p.io?.settle({ timeoutMs: EXIT_SETTLE_MS }),
      { onHoldExpired: (t) => (t as Container).onHoldExpired(), limits: deps.exitLimits },
    );
    deps.reaper.onExit((e) => this.router.handle(e));
    this.env = {
      namespace: deps.namespace,
      router: this.router,
      events,
      log: deps.log,
      registry: deps.reaper,
      runcFor: (o: RuntimeOptions) =>
        new Runc({
          binary: o.binaryName || "runc",
          root: `${o.root || "/run/containerd/runc"}/${deps.namespace}`,
          systemdCgroup: o.systemdCgroup,
          criu: o.criuPath,
          registry: deps.reaper,
          log: deps.log,
        }),
    };
  }

  /** Containers held. */
  get size(): number {
    return this.containers.size;
  }

  /** A plain copy of what the service holds, for the daemon's state dump (src/task/snapshot.ts). */
  snapshot(): TaskSnapshot {
    return taskSnapshot(this.deps.namespace, this.containers, this.creating, this.shutdownRequested);
  }

  /** `cb` runs whenever a Shutdown was requested (ever) and no container is left. */
  onShutdownRequested(cb: () => void): void {
    this.shutdownCbs.push(cb);
  }

  /** The Task methods, to register under both v2 and v3 service names. */
  methods(): Record<string, Method> {
    return {
      Create: unary(T.CreateTaskRequest, T.CreateTaskResponse, (r, ctx) => this.create(r, ctx.signal)),
      Start: unary(T.StartRequest, T.StartResponse, (r, ctx) => this.start(r, ctx.signal)),
      State: unary(T.StateRequest, T.StateResponse, (r) => this.state(r)),
      Delete: unary(T.DeleteRequest, T.DeleteResponse, (r, ctx) => this.delete(r, ctx.signal)),
      Kill: unary(T.KillRequest, Empty, (r, ctx) => this.kill(r, ctx)),
      Wait: unary(T.WaitRequest, T.WaitResponse, (r, ctx) => this.wait(r, ctx.signal)),
      Exec: unary(T.ExecProcessRequest, Empty, (r) => this.exec(r)),
      ResizePty: unary(T.ResizePtyRequest, Empty, (r) => this.resize(r)),
      CloseIO: unary(T.CloseIORequest, Empty, (r) => this.closeIO(r)),
      Pids: unary(T.PidsRequest, T.PidsResponse, async (r, ctx) => ({ processes: await taskPids(this.get(r.id), ctx.signal) })),
      Pause: unary(T.PauseRequest, Empty, (r, ctx) => empty(pauseTask(this.get(r.id), ctx.signal))),
      Resume: unary(T.ResumeRequest, Empty, (r, ctx) => empty(resumeTask(this.get(r.id), ctx.signal))),
      Update: unary(T.UpdateTaskRequest, Empty, (r, ctx) => empty(updateTask(this.get(r.id), r.resources?.value ?? undefined, ctx.signal))),
      Checkpoint: unary(T.CheckpointTaskRequest, Empty, async (r, ctx) => {
        const opts = parseCheckpointOptions(r.options, (v) => containerd.runc.v1.CheckpointOptions.decode(v));
        await checkpointTask(this.get(r.id), r.path, opts, ctx.signal);
        return {};
      }),
      Stats: unary(T.StatsRequest, T.StatsResponse, async (r) => ({ stats: await readStats(this.get(r.id).cgroup) })),
      Connect: unary(T.ConnectRequest, T.ConnectResponse, (r) => ({
        shimPid: this.deps.shimPid,
        taskPid: this.containers.get(r.id)?.init.pid ?? 0,
        version: "",
      })),
      Shutdown: unary(T.ShutdownRequest, Empty, () => this.shutdown()),
    };
  }

  /** The container `id`; malformed ids (and a malformed `execId`) are InvalidArgument, unknown ones NotFound. */
  private get(id: string, execId = ""): Container {
    validateId(id, "container");
    if (execId !== "") validateId(execId, "exec");
    const c = this.containers.get(id);
    if (c === undefined) throw notFound(`Cannot find task "${id}"`);
    return c;
  }

  private async create(r: containerd.task.v2.CreateTaskRequest, signal: AbortSignal) {
    validateId(r.id, "container");
    this.deps.bundleScope?.check(r.bundle, `task "${r.id}"`);
    if (this.containers.has(r.id)) throw failedPrecondition(`Cannot create task "${r.id}": already exists`);
    const options = parseOptions(r.options, OPTION_CODECS, this.deps.loadConfig);
    checkOptions(options, { systemdRunning: existsSync("/run/systemd/system") });
    const restoreFrom = r.checkpoint ? { imagePath: r.checkpoint, parentPath: r.parentCheckpoint } : undefined;
    const rootfs = (r.rootfs ?? []).map((m) => ({
      type: m.type ?? "",
      source: m.source ?? "",
      target: m.target ?? "",
      options: m.options ?? [],
    }));
    const params = { id: r.id, bundle: r.bundle, rootfs, options, stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal, restoreFrom };
    // The id is reserved while runc runs, so a concurrent Create of the same id fails at once.
    if (this.creating.has(r.id)) throw failedPrecondition(`Cannot create task "${r.id}": already exists`);
    this.creating.add(r.id);
    try {
      const c = await Container.create(params, this.env, signal);
      this.containers.set(r.id, c);
      return { pid: c.init.pid };
    } finally {
      this.creating.delete(r.id);
    }
  }

  private async start(r: containerd.task.v2.StartRequest, signal: AbortSignal) {
    const c = this.get(r.id, r.execId);
    if (r.execId === "") return { pid: await c.start(signal) };
    return { pid: await startExec(c, c.process(r.execId), signal) };
  }

  private state(r: containerd.task.v2.StateRequest) {
    const c = this.get(r.id, r.execId);
    const p = c.process(r.execId);
    let status = p.status;
    if (!p.isInit && (c.init.status === "paused" || c.init.status === "pausing") && status === "running") {
      status = c.init.status;
    }
    return {
      id: p.id,
      bundle: c.bundle,
      pid: p.pid,
      status: STATUS[status],
      stdin: p.stdio.stdin,
      stdout: p.stdio.stdout,
      stderr: p.stdio.stderr,
      terminal: p.stdio.terminal,
      exitStatus: p.exitStatus,
      exitedAt: p.exitedAt ? timestamp(p.exitedAt) : ZERO_TIME,
      execId: p.isInit ? "" : p.execId,
    };
  }

  private async delete(r: containerd.task.v2.DeleteRequest, signal: AbortSignal) {
    const c = this.get(r.id, r.execId);
    let p: Proc;
    if (r.execId !== "") {
      p = await deleteExec(c, c.process(r.execId));
    } else {
      p = await c.delete(signal);
      this.containers.delete(r.id);
      this.maybeShutdown();
    }
    return { pid: p.pid, exitStatus: p.exitStatus, exitedAt: p.exitedAt ? timestamp(p.exitedAt) : ZERO_TIME };
  }

  /**
   * The exits a Kill causes are recorded and published after its reply was written: containerd 2.x
   * deletes the task and closes its connection on /tasks/exit, and a reply still pending is then lost.
   */
  private async kill(r: containerd.task.v2.KillRequest, ctx: CallContext) {
    const c = this.get(r.id, r.execId);
    ctx.afterReply(this.router.holdExits(c));
    if (r.execId === "") await c.kill(r.signal, r.all, ctx.signal);
    else await killExec(c.process(r.execId), r.signal);
    return {};
  }

  private async wait(r: containerd.task.v2.WaitRequest, signal: AbortSignal) {
    const p = this.get(r.id, r.execId).process(r.execId);
    await p.wait(signal);
    return { exitStatus: p.exitStatus, exitedAt: p.exitedAt ? timestamp(p.exitedAt) : ZERO_TIME };
  }

  private exec(r: containerd.task.v2.ExecProcessRequest) {
    const c = this.get(r.id);
    if (c.restoreFrom !== undefined) throw failedPrecondition(`Cannot exec in task "${r.id}": created from a checkpoint and not started`);
    const stdio = { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr, terminal: r.terminal };
    addExec(c, r.execId, stdio, r.spec?.value ?? undefined);
    return {};
  }

  private resize(r: containerd.task.v2.ResizePtyRequest) {
    const p = this.get(r.id, r.execId).process(r.execId);
    if (p.hasExited && !p.isInit) throw failedPrecondition(`Cannot resize exec "${p.execId}": process stopped`);
    p.io?.resize?.(r.width, r.height);
    return {};
  }

  private closeIO(r: containerd.task.v2.CloseIORequest) {
    const p = this.get(r.id, r.execId).process(r.execId);
    if (r.stdin) p.io?.closeStdin();
    return {};
  }

  private shutdown() {
    this.shutdownRequested = true;
    this.maybeShutdown();
    return {};
  }

  /** Shutdown is sticky: once asked for, the shim goes as soon as nothing is held (containerd#12344). */
  private maybeShutdown(): void {
    if (!this.shutdownRequested || this.containers.size > 0) return;
    for (const cb of this.shutdownCbs) setImmediate(cb);
  }
}

/** The empty reply of a method once `done` settled. */
async function empty(done: Promise<void>): Promise<object> {
  await done;
  return {};
}

const OPTION_CODECS = {
  runcOptions: (v: Uint8Array) => boot.runc.v1.Options.decode(v) as unknown as Record<string, unknown>,
  linuxCreateOptions: (v: Uint8Array) => boot.linux.runc.CreateOptions.decode(v) as unknown as Record<string, unknown>,
  runtimeOptions: (v: Uint8Array) => runtimeoptions.v1.Options.decode(v),
};
