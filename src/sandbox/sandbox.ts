/**
 * One pod sandbox: its bundle, its pause process run with runc, and its state. The pause process is
 * what CRI builds containers' namespace paths from (`/proc/<pid>/ns/...`, protocol.md §6.5), so its
 * pid is the sandbox's pid, and its exit (reaped by the shim's Reaper) is the sandbox's exit.
 */
import { setTimeout as delay } from "node:timers/promises";
import { failedPrecondition, isCode } from "../errdefs.js";
import type { Logger } from "../log.js";
import { readPidFile, type Runc } from "../runc/index.js";
import type { Exit, Reaper } from "../sys/index.js";
import { removeSandboxBundle, type SandboxFiles } from "./bundle.js";

/** Sandbox states. `starting` covers `runc create`+`start`; `stopped` is final. */
export type SandboxState = "created" | "starting" | "running" | "stopped";

const NEXT = {
  created: ["starting", "stopped"],
  starting: ["running", "created", "stopped"],
  running: ["stopped"],
  stopped: [],
} as const satisfies Record<SandboxState, readonly SandboxState[]>;

/** SIGTERM, then SIGKILL after this long when StopSandbox gives no timeout (CRI passes 0). */
export const STOP_GRACE_MS = 1000;
/** How long to wait for the pause process to be reaped after SIGKILL. */
export const KILL_WAIT_MS = 10_000;

const SIGTERM = 15;
const SIGKILL = 9;

/** What a sandbox needs from the shim. */
export interface SandboxEnv {
  runc: Runc;
  reaper: Pick<Reaper, "subscribe" | "onExit">;
  log: Logger;
}

/** A sandbox's exit: status (128+signal when killed) and time. */
export interface SandboxExit {
  status: number;
  at: Date;
}

/** A pod sandbox held by the shim, from CreateSandbox to ShutdownSandbox. */
export class Sandbox {
  private stateValue: SandboxState = "created";
  private pidValue = 0;
  private startedAt: Date | undefined;
  private exit: SandboxExit | undefined;
  private unlisten: (() => void) | undefined;
  private readonly exited: Promise<SandboxExit>;
  private resolveExited!: (e: SandboxExit) => void;

  /** `files` must already hold the spec and rootfs (written by `writeSandboxBundle`). */
  constructor(
    readonly id: string,
    readonly files: SandboxFiles,
    readonly netnsPath: string,
    private readonly env: SandboxEnv,
  ) {
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
  }

  /** Where the sandbox is in its life (see NEXT for the legal moves). */
  get state(): SandboxState {
    return this.stateValue;
  }
  /** The pause process's pid (0 before start). Kept after exit, as containerd reports it. */
  get pid(): number {
    return this.pidValue;
  }
  /** When the pause process started (undefined before StartSandbox succeeded). */
  get createdAt(): Date | undefined {
    return this.startedAt;
  }
  /** The pause process's exit, once seen (or the stop of a sandbox that never started). */
  get exitInfo(): SandboxExit | undefined {
    return this.exit;
  }

  private moveTo(to: SandboxState, op: string): void {
    if (!(NEXT[this.stateValue] as readonly SandboxState[]).includes(to)) {
      throw failedPrecondition(`Cannot ${op} sandbox "${this.id}" in ${this.stateValue} state`);
    }
    this.stateValue = to;
  }

  /** Runs the pause process (`runc create` + `runc start`). Returns its pid. */
  async start(signal?: AbortSignal): Promise<number> {
    this.moveTo("starting", "start");
    const { runc } = this.env;
    const logFile = this.files.logFile;
    // Taken before runc create: the pause process could die before its exit listener is in place.
    const early = this.env.reaper.subscribe();
    let created = false;
    try {
      await runc.create(this.id, { bundle: this.files.bundle, pidFile: this.files.pidFile, logFile, ...(signal ? { signal } : {}) });
      created = true;
      const pid = await readPidFile(this.files.pidFile);
      const seen = early.buffered().find((e) => e.pid === pid);
      if (seen !== undefined) throw failedPrecondition(`Cannot start sandbox "${this.id}": its pause process exited with ${seen.status}`);
      this.unlisten = this.env.reaper.onExit((e) => {
        if (e.pid === pid) this.onExit(e);
      });
      early.close();
      this.pidValue = pid;
      await runc.start(this.id, { logFile, ...(signal ? { signal } : {}) });
      this.startedAt = new Date();
      if (this.stateValue === "starting") this.moveTo("running", "start");
      this.env.log.info("sandbox started", { id: this.id, pid });
      return pid;
    } catch (err) {
      early.close();
      this.unlisten?.();
      this.unlisten = undefined;
      this.pidValue = 0;
      if (created) await runc.delete(this.id, { force: true, logFile }).catch((e: unknown) => this.env.log.warn("cannot delete failed sandbox", { id: this.id, error: e }));
      if (this.stateValue === "starting") this.stateValue = "created";
      throw err;
    }
  }

  private onExit(e: Exit): void {
    this.unlisten?.();
    this.unlisten = undefined;
    this.markExited({ status: e.status, at: e.at });
    this.env.log.info("sandbox exited", { id: this.id, pid: e.pid, status: e.status });
  }

  private markExited(e: SandboxExit): void {
    if (this.exit !== undefined) return;
    this.exit = e;
    this.stateValue = "stopped";
    this.resolveExited(e);
  }

  /** Resolves with the exit once the sandbox stopped; rejects only when `signal` aborts. */
  async wait(signal?: AbortSignal): Promise<SandboxExit> {
    if (this.exit !== undefined) return this.exit;
    if (!signal) return this.exited;
    signal.throwIfAborted();
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      void this.exited.then((e) => {
        signal.removeEventListener("abort", onAbort);
        resolve(e);
      });
    });
  }

  /** True if the exit arrived within `ms`. */
  private async exitedWithin(ms: number, signal?: AbortSignal): Promise<boolean> {
    if (this.exit !== undefined) return true;
    const ac = new AbortController();
    const timer = delay(ms, false, { signal: signal ? AbortSignal.any([signal, ac.signal]) : ac.signal }).catch(() => false);
    try {
      return await Promise.race([this.exited.then(() => true), timer]);
    } finally {
      ac.abort();
    }
  }

  /**
   * Stops the pause process: SIGTERM, then SIGKILL after `timeoutSecs` (0: a short grace), then
   * deletes its runc state. A sandbox that never started just becomes stopped. Idempotent.
   */
  async stop(timeoutSecs: number, signal?: AbortSignal): Promise<void> {
    if (this.stateValue === "starting") throw failedPrecondition(`Cannot stop sandbox "${this.id}" in starting state`);
    if (this.stateValue === "created") {
      this.markExited({ status: 0, at: new Date() });
      return;
    }
    const logFile = this.files.logFile;
    if (this.exit === undefined) {
      await this.signalPause(SIGTERM, signal);
      const grace = timeoutSecs > 0 ? timeoutSecs * 1000 : STOP_GRACE_MS;
      if (!(await this.exitedWithin(grace, signal))) {
        await this.signalPause(SIGKILL, signal);
        if (!(await this.exitedWithin(KILL_WAIT_MS, signal))) {
          throw failedPrecondition(`Cannot stop sandbox "${this.id}": pid ${this.pidValue} still there after SIGKILL`);
        }
      }
    }
    await this.env.runc.delete(this.id, { force: true, logFile, ...(signal ? { signal } : {}) }).catch((err: unknown) => {
      if (!isCode(err, "NotFound")) throw err;
    });
  }

  private async signalPause(sig: number, signal?: AbortSignal): Promise<void> {
    try {
      await this.env.runc.kill(this.id, sig, { logFile: this.files.logFile, ...(signal ? { signal } : {}) });
    } catch (err) {
      // Already exited (its exit may still be on the way from the reaper): nothing to signal.
      if (!isCode(err, "NotFound")) throw err;
    }
  }

  /** Stops the sandbox now and removes the files the shim wrote into its bundle. */
  async shutdown(signal?: AbortSignal): Promise<void> {
    await this.stop(0, signal);
    this.unlisten?.();
    await removeSandboxBundle(this.files);
  }
}
