/**
 * One process of a container: the init (execId "") or an exec. Its status is data with a transition
 * table; every refusal is a FailedPrecondition that names the state.
 */
import { failedPrecondition, notFound } from "../errdefs.js";

export type Status = "created" | "running" | "pausing" | "paused" | "stopped" | "deleted";

/** Legal transitions. "pausing" is transient while `runc pause` runs. */
const NEXT = {
  created: ["running", "stopped", "deleted"],
  running: ["pausing", "stopped"],
  pausing: ["paused", "running", "stopped"],
  paused: ["running", "stopped"],
  stopped: ["deleted"],
  deleted: [],
} as const satisfies Record<Status, readonly Status[]>;

/** What a process was created with, echoed by State. */
export interface StdioConfig {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

/** Closes and drains a process's IO; implemented by stdio (pipes, console). */
export interface IOHandle {
  closeStdin(): void;
  drain(opts: { timeoutMs: number }): Promise<boolean>;
  /** At the exit, before it is reported: the output's reader took what the process wrote (bounded). */
  settle(opts: { timeoutMs: number }): Promise<boolean>;
  close(): void;
  resize?(cols: number, rows: number): void;
}

/** A container process and its lifecycle. */
export class Proc {
  pid = 0;
  status: Status = "created";
  exitStatus = 0;
  exitedAt: Date | undefined;
  io: IOHandle | undefined;
  /** OCI process spec of an exec (JSON object), unused for the init. */
  spec: object | undefined;
  /** Set while an exec's Start runs: `done` settles when it ended, whatever the outcome. */
  starting: { done: Promise<void>; abort: AbortController } | undefined;
  private readonly exited: Promise<void>;
  private resolveExited!: () => void;

  constructor(
    /** Container id. */
    readonly containerId: string,
    /** Exec id, "" for the init process. */
    readonly execId: string,
    readonly stdio: StdioConfig,
  ) {
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
  }

  /** The id containerd uses for this process: the exec id, or the container id for the init. */
  get id(): string {
    return this.execId === "" ? this.containerId : this.execId;
  }

  get isInit(): boolean {
    return this.execId === "";
  }

  /** True once the exit was recorded (stopped or deleted after a stop). */
  get hasExited(): boolean {
    return this.exitedAt !== undefined;
  }

  /** Moves to `to`, or throws FailedPrecondition naming the current state. */
  transition(to: Status, op: string): void {
    if (!(NEXT[this.status] as readonly Status[]).includes(to)) {
      throw failedPrecondition(`Cannot ${op} ${this.describe()} in ${this.status} state`);
    }
    this.status = to;
  }

  /** Throws FailedPrecondition unless the status is one of `allowed`. */
  require(allowed: readonly Status[], op: string): void {
    if (this.status === "deleted") throw notFound(`Cannot ${op} ${this.describe()}: process deleted`);
    if (!allowed.includes(this.status)) {
      throw failedPrecondition(`Cannot ${op} ${this.describe()} in ${this.status} state`);
    }
  }

  /** Records the exit. Unblocks Wait. Idempotent: only the first exit counts. */
  setExited(status: number, at: Date): void {
    if (this.exitedAt !== undefined) return;
    this.exitStatus = status;
    this.exitedAt = at;
    if (this.status !== "deleted") this.status = "stopped";
    this.resolveExited();
  }

  /** Resolves when the exit has been recorded; rejects when `signal` aborts first. */
  wait(signal?: AbortSignal): Promise<void> {
    if (this.exitedAt !== undefined || signal === undefined) return this.exited;
    signal.throwIfAborted();
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      void this.exited.then(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      });
    });
  }

  private describe(): string {
    return this.isInit ? `task "${this.containerId}"` : `exec "${this.execId}" of task "${this.containerId}"`;
  }
}
