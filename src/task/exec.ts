/**
 * Exec processes: Exec only registers (no runc call), Start runs `runc exec --detach`, Kill signals the
 * pid directly, Delete drains and forgets. Execs count as live from the moment Start is requested, so
 * the container's init exit is published after theirs (see exits.ts).
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from "../errdefs.js";
import { readPidFile } from "../runc/index.js";
import { validateId } from "./bundle.js";
import { Container, DRAIN_TIMEOUT_MS, ioOpts } from "./container.js";
import { prepareIO, type PreparedIO } from "./io.js";
import { Proc, type IOHandle, type StdioConfig } from "./process.js";

/**
 * Registers an exec; publishes /tasks/exec-added. Accepted while the init's exit is held back (an exec
 * still starting or running): as in runc-v2 only its Start is refused then.
 */
export function addExec(c: Container, execId: string, stdio: StdioConfig, specJson: Uint8Array | undefined): Proc {
  validateId(execId, "exec");
  if (c.execs.has(execId)) throw alreadyExists(`Cannot add exec "${execId}" to task "${c.id}": already exists`);
  c.init.require(["created", "running"], "exec in");
  let spec: Record<string, unknown>;
  try {
    spec = JSON.parse(Buffer.from(specJson ?? new Uint8Array()).toString("utf8")) as Record<string, unknown>;
  } catch (err) {
    throw invalidArgument(`Cannot parse process spec of exec "${execId}": invalid JSON`, { cause: err });
  }
  if (spec === null || typeof spec !== "object") throw invalidArgument(`Cannot use process spec of exec "${execId}"`);
  spec.terminal = stdio.terminal;
  const p = new Proc(c.id, execId, stdio);
  p.spec = spec;
  p.io = new PendingIO();
  c.execs.set(execId, p);
  c.env.events.execAdded(c.id, execId);
  return p;
}

function initNotRunning(c: Container, p: Proc, cause?: unknown) {
  return failedPrecondition(`Cannot start exec "${p.execId}": container "${c.id}" init process is not running`, { cause });
}

/**
 * `runc exec --detach`; publishes /tasks/exec-started before any exit of the exec. Whatever happens, the
 * exec stops counting as live exactly once (its exit, or a failed start), so a held init exit is never
 * stuck; a start that fails after runc started the process kills that process.
 */
export async function startExec(c: Container, p: Proc, signal?: AbortSignal): Promise<number> {
  if (p.starting !== undefined) throw failedPrecondition(`Cannot start exec "${p.execId}": already starting`);
  p.require(["created"], "start");
  if (c.initExited || c.init.hasExited || c.init.status === "deleted") throw initNotRunning(c, p);
  const router = c.env.router;
  const abort = new AbortController();
  let settle!: () => void;
  p.starting = { done: new Promise<void>((resolve) => (settle = resolve)), abort };
  const startSignal = signal === undefined ? abort.signal : AbortSignal.any([signal, abort.signal]);
  c.liveExecs++;
  const early = router.subscribe();
  const logFile = path.join(c.bundle, `${p.execId}-runc.log.json`);
  const pidFile = path.join(c.bundle, `${p.execId}.pid`);
  let io: PreparedIO | undefined;
  let pid: number;
  try {
    io = await prepareIO(p.stdio, ioOpts(c.id, c.env, c.options, startSignal));
    await c.runc.exec(c.id, p.spec ?? {}, {
      pidFile,
      consoleSocket: io.consoleSocket,
      stdio: io.runcStdio,
      logFile,
      signal: startSignal,
    });
    const ready = await io.ready({ signal: startSignal });
    io = undefined;
    const pending = p.io;
    p.io = ready;
    if (pending instanceof PendingIO) pending.replay(ready);
    pid = await readPidFile(pidFile);
  } catch (err) {
    early.close();
    io?.abort();
    if (!(p.io instanceof PendingIO)) {
      p.io?.close();
      p.io = new PendingIO();
    }
    await killStarted(pidFile);
    router.execStartFailed(c);
    throw c.initExited ? initNotRunning(c, p, err) : err;
  } finally {
    p.starting = undefined;
    settle();
    void Container.removeQuietly(logFile);
  }
  p.pid = pid;
  p.transition("running", "start");
  c.env.events.execStarted(c.id, p.execId, p.pid);
  early.started(c, p);
  // The init exited while runc exec ran and the process still got in (a shared pid namespace): it must
  // not outlive its container. Its exit comes after its start event, and before the init's.
  if (c.initExited && !p.hasExited) signalQuietly(p.pid, "SIGKILL");
  return p.pid;
}

/**
 * After a failed start: a process runc started (its pid file was written) and that is now our child
 * (runc exited, we are its subreaper) is killed; the pid file goes. Never throws.
 */
async function killStarted(pidFile: string): Promise<void> {
  const pid = await readPidFile(pidFile).catch(() => 0);
  if (pid > 0 && parentOf(pid) === process.pid) signalQuietly(pid, "SIGKILL");
  await Container.removeQuietly(pidFile);
}

function parentOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return 0;
  }
}

function signalQuietly(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

/** Signals an exec's pid, once a Start in progress ended. Not started: FailedPrecondition; exited: NotFound. */
export async function killExec(p: Proc, sig: number): Promise<void> {
  if (p.starting !== undefined) await p.starting.done;
  if (p.status === "created") throw failedPrecondition(`Cannot kill exec "${p.execId}": process not created`);
  if (p.hasExited || p.status === "deleted") throw notFound(`Cannot kill exec "${p.execId}": process already finished`);
  try {
    process.kill(p.pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") {
      throw notFound(`Cannot kill exec "${p.execId}": process already finished`, { cause: err });
    }
    throw err;
  }
}

/**
 * Deletes an exec that is created or stopped, once a Start in progress ended (as runc-v2, whose Delete
 * waits for the exec's lock); drains its output (bounded) and forgets it.
 */
export async function deleteExec(c: Container, p: Proc): Promise<Proc> {
  if (p.starting !== undefined) await p.starting.done;
  p.require(["created", "stopped"], "delete");
  c.execs.delete(p.execId);
  c.env.router.forget(p);
  let drained = true;
  if (p.io !== undefined) drained = await p.io.drain({ timeoutMs: DRAIN_TIMEOUT_MS });
  p.io?.close();
  p.status = "deleted";
  void Container.removeQuietly(path.join(c.bundle, `${p.execId}.pid`));
  if (!drained) {
    throw failedPrecondition(`failed to drain exec process "${p.execId}" io: timed out`);
  }
  return p;
}

/**
 * The IO of an exec before `runc exec` returned. containerd's clients may send CloseIO (ctr does, as soon
 * as its stdin hits EOF) or ResizePty before or while Start runs; both are remembered and applied to the
 * real IO once it exists, so a short stdin still ends with EOF in the container.
 */
class PendingIO implements IOHandle {
  private stdinClosed = false;
  private size: [number, number] | undefined;

  closeStdin(): void {
    this.stdinClosed = true;
  }

  resize(cols: number, rows: number): void {
    this.size = [cols, rows];
  }

  drain(): Promise<boolean> {
    return Promise.resolve(true);
  }

  settle(): Promise<boolean> {
    return Promise.resolve(true);
  }

  close(): void {}

  /** Applies what was asked for so far to the real IO. */
  replay(io: IOHandle): void {
    if (this.size !== undefined) io.resize?.(this.size[0], this.size[1]);
    if (this.stdinClosed) io.closeStdin();
  }
}
