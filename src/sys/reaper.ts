/**
 * Child subreaper and exit reaper. The shim becomes a subreaper so container inits (orphaned when
 * `runc create` exits) are re-parented to it; the Reaper collects their exits.
 *
 * It never calls `waitpid(-1)`: libuv reaps the processes it spawned with `waitpid(pid)` and silently
 * drops a `ChildProcess` whose pid someone else reaped (it never emits `exit`). Instead, on every SIGCHLD
 * the Reaper lists this process's children from `/proc/self/task/<tid>/children` (every thread: an orphan
 * is re-parented to whichever thread the kernel picks) and waits by pid for each child that is not
 * registered with {@link Reaper.own}. So: whoever spawns with `child_process`/execa must call `own(pid)`
 * synchronously after spawn returns (before yielding to the event loop), and `disown(pid)` after `exit`.
 * A child spawned without `own()` is reaped here and its `ChildProcess` never emits `exit`.
 */
import { readdirSync, readFileSync } from "node:fs";
import { Logger } from "../log.js";
import * as libc from "./libc.js";

/** One reaped child. `status` is the exit code, or 128+signal if it was killed by a signal. */
export interface Exit {
  pid: number;
  status: number;
  at: Date;
}

/** Pids whose exit libuv collects itself (spawned through child_process); the Reaper leaves them alone. */
export interface ChildRegistry {
  own(pid: number): void;
  disown(pid: number): void;
}

/**
 * Exits seen since the subscription was taken, in order. Keeps buffering until `close()` (bounded:
 * beyond {@link SUBSCRIPTION_LIMIT} the oldest exit is dropped and a warning logged).
 */
export interface ExitSubscription {
  /** Calls `cb` for every exit from now on (exits already buffered are not replayed: read `buffered()`). */
  onExit(cb: (e: Exit) => void): void;
  /** A copy of every exit received since subscribing (minus any dropped beyond the limit). */
  buffered(): Exit[];
  /** Stops buffering and delivering. Idempotent. */
  close(): void;
}

/** Maximum exits an unclosed subscription keeps. */
export const SUBSCRIPTION_LIMIT = 4096;

/** Makes this process a child subreaper (`prctl(PR_SET_CHILD_SUBREAPER, 1)`). Throws `ShimError` on failure. */
export function setChildSubreaper(): void {
  libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1);
}

class Subscription implements ExitSubscription {
  private readonly exits: Exit[] = [];
  private readonly callbacks: Array<(e: Exit) => void> = [];
  private dropped = 0;
  closed = false;

  constructor(
    private readonly log: Logger,
    private readonly detach: (s: Subscription) => void,
  ) {}

  deliver(e: Exit): void {
    if (this.closed) return;
    this.exits.push(e);
    if (this.exits.length > SUBSCRIPTION_LIMIT) {
      const old = this.exits.shift();
      if (this.dropped++ === 0) this.log.warn("exit subscription full, dropping oldest exits", { pid: old?.pid });
    }
    for (const cb of this.callbacks) {
      try {
        cb(e);
      } catch (err) {
        this.log.error("exit subscriber threw", { pid: e.pid, error: err });
      }
    }
  }

  onExit(cb: (e: Exit) => void): void {
    if (!this.closed) this.callbacks.push(cb);
  }

  buffered(): Exit[] {
    return this.exits.slice();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.exits.length = 0;
    this.callbacks.length = 0;
    this.detach(this);
  }
}

/**
 * Reaps children that are not libuv's. Create one per shim; call {@link setChildSubreaper} separately
 * (the daemon does, tests do), then `start()`.
 */
export class Reaper implements ChildRegistry {
  private readonly log: Logger;
  private readonly owned = new Set<number>();
  private readonly subs = new Set<Subscription>();
  private readonly listeners = new Set<(e: Exit) => void>();
  private readonly onSignal = () => this.reapNow();
  private running = false;

  constructor(opts: { log?: Logger } = {}) {
    this.log = opts.log ?? new Logger();
  }

  /** Installs the SIGCHLD handler and reaps whatever already exited. Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    process.on("SIGCHLD", this.onSignal);
    this.reapNow();
  }

  /** Removes the SIGCHLD handler. Subscriptions stay open but receive nothing more until `start()`. */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    process.removeListener("SIGCHLD", this.onSignal);
  }

  /** Marks `pid` as libuv's: the Reaper will never wait for it. Call synchronously after spawn. */
  own(pid: number): void {
    if (pid > 0) this.owned.add(pid);
  }

  /**
   * Forgets `pid` (after its ChildProcess emitted `exit`). Rescans when running, in case the pid was
   * reused by an orphan whose SIGCHLD arrived while the pid was still owned.
   */
  disown(pid: number): void {
    if (this.owned.delete(pid) && this.running) this.reapNow();
  }

  /** Takes a subscription; take it BEFORE starting anything whose exit you need (early exits). */
  subscribe(): ExitSubscription {
    const s = new Subscription(this.log, (x) => this.subs.delete(x));
    this.subs.add(s);
    return s;
  }

  /** Adds a permanent listener for every exit; returns a function that removes it. */
  onExit(cb: (e: Exit) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /**
   * Scans once: waits (WNOHANG) for every child not owned, repeating until a pass reaps nothing, so
   * coalesced SIGCHLDs lose no exit. Returns the exits it delivered.
   */
  reapNow(): Exit[] {
    const all: Exit[] = [];
    for (let pass = 0; pass < 64; pass++) {
      const reaped: Exit[] = [];
      for (const pid of this.children()) {
        if (this.owned.has(pid)) continue;
        let status: number | undefined;
        try {
          status = libc.waitpidNoHang(pid);
        } catch (err) {
          // ECHILD: gone already (reaped by libuv after a late own(), or not our child any more).
          if (!(err instanceof libc.SysError && err.errno === libc.E.ECHILD)) {
            this.log.warn("waitpid failed", { pid, error: err });
          }
          continue;
        }
        if (status !== undefined) reaped.push({ pid, status, at: new Date() });
      }
      for (const e of reaped) this.emit(e);
      all.push(...reaped);
      if (reaped.length === 0) break;
    }
    return all;
  }

  private emit(e: Exit): void {
    this.log.debug("reaped child", { pid: e.pid, status: e.status });
    for (const s of [...this.subs]) s.deliver(e);
    for (const cb of [...this.listeners]) {
      try {
        cb(e);
      } catch (err) {
        this.log.error("exit listener threw", { pid: e.pid, error: err });
      }
    }
  }

  /** Pids of this process's children, from every thread's `children` file (zombies included). */
  private children(): number[] {
    const pids = new Set<number>();
    let tids: string[];
    try {
      tids = readdirSync("/proc/self/task");
    } catch (err) {
      this.log.error("cannot list threads", { error: err });
      return [];
    }
    for (const tid of tids) {
      let text: string;
      try {
        text = readFileSync(`/proc/self/task/${tid}/children`, "latin1");
      } catch {
        continue; // thread exited meanwhile
      }
      for (const s of text.split(" ")) {
        const pid = Number.parseInt(s, 10);
        if (pid > 0) pids.add(pid);
      }
    }
    return [...pids];
  }
}
