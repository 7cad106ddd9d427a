/**
 * Plain snapshots of the task service's state, for the daemon's SIGUSR1 dump (src/shim/diagnostics/dump.ts). Only
 * reads: a snapshot never changes a container, and it holds no reference to one.
 */
import type { Container } from "./container.js";
import type { Proc, Status } from "./process.js";

/** One process (the init or an exec) as the dump shows it. */
export interface ProcessSnapshot {
  /** "" for the init. */
  execId: string;
  pid: number;
  status: Status;
  /** Set once the exit was recorded. */
  exitStatus?: number;
  exitedAt?: string;
  terminal: boolean;
  /** An exec whose Start (`runc exec`) is still running. */
  starting?: true;
}

/** One container: its init's fields, its execs, and where its exit stands. */
export interface ContainerSnapshot extends Omit<ProcessSnapshot, "execId"> {
  id: string;
  bundle: string;
  sandboxId?: string;
  /** The OCI runtime binary it runs with (runc unless the options name another). */
  runtime: string;
  /** Execs whose Start was requested and whose exit was not yet handled; the init exit waits for them. */
  liveExecs: number;
  /**
   * The init's exit was seen but not yet recorded and published: it is held back by live execs, by the
   * replies of Kills in flight, or by output still being copied (src/task/exits.ts).
   */
  exitHeld?: true;
  execs: ProcessSnapshot[];
}

/** The whole task service of one daemon: every container of every pod it serves. */
export interface TaskSnapshot {
  namespace: string;
  containers: ContainerSnapshot[];
  /** Ids reserved by a Create still running. */
  creating: string[];
  /** A Shutdown arrived; the daemon exits once it holds nothing. */
  shutdownRequested: boolean;
}

function processSnapshot(p: Proc): ProcessSnapshot {
  const s: ProcessSnapshot = { execId: p.execId, pid: p.pid, status: p.status, terminal: p.stdio.terminal };
  if (p.exitedAt !== undefined) {
    s.exitStatus = p.exitStatus;
    s.exitedAt = p.exitedAt.toISOString();
  }
  if (p.starting !== undefined) s.starting = true;
  return s;
}

/** A snapshot of one container and its execs. */
export function containerSnapshot(c: Container): ContainerSnapshot {
  const { execId: _init, ...init } = processSnapshot(c.init);
  const s: ContainerSnapshot = {
    id: c.id,
    bundle: c.bundle,
    ...init,
    runtime: c.options.binaryName || "runc",
    liveExecs: c.liveExecs,
    execs: [...c.execs.values()].map(processSnapshot),
  };
  if (c.sandboxId !== undefined) s.sandboxId = c.sandboxId;
  if (c.initExited && !c.init.hasExited) s.exitHeld = true;
  return s;
}

/** A snapshot of the task service's maps (called by TaskService.snapshot). */
export function taskSnapshot(
  namespace: string,
  containers: ReadonlyMap<string, Container>,
  creating: ReadonlySet<string>,
  shutdownRequested: boolean,
): TaskSnapshot {
  return {
    namespace,
    containers: [...containers.values()].map(containerSnapshot),
    creating: [...creating],
    shutdownRequested,
  };
}
