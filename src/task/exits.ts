/**
 * Routes reaped exits to processes, keeping containerd's ordering rules:
 *  - a process's TaskExit is published after its TaskStart/TaskExecStarted, even when it exits while
 *    `runc start`/`runc exec` is still running (the early-exit case): callers `subscribe()` before
 *    starting and `started()` after publishing the start event;
 *  - a container's init exit is published after the exits of all its execs: execs count as live from
 *    the moment their Start is requested, and the init exit is held until that count is zero, bounded:
 *    after `execHoldMs` the container is told to make its execs go, after `execGraceMs` more it is
 *    published anyway, so a stuck start or process never keeps a task RUNNING forever;
 *  - an exit is published after the reply of every Kill in flight on its container was written
 *    (bounded by `killReplyMs`): containerd 2.x deletes the task and closes its connection as soon as
 *    it sees /tasks/exit, and a Kill reply still pending then is lost ("ttrpc: closed").
 * Mirrors the design of containerd's runc shim (preStart/handleStarted), with JS's single thread in
 * place of its locks: between an exit check and a map update there is never an await.
 */
import type { Exit } from "../sys/index.js";
import type { Proc } from "./process.js";

/** What the router needs from a container. */
export interface ExitTarget {
  /** Execs whose Start was requested and whose exit was not yet handled. */
  liveExecs: number;
  /** Set when the init exit was seen; new exec starts are refused from then on. */
  initExited: boolean;
}

/** A buffer of exits seen since it was taken. */
export interface EarlyExits {
  /** Registers `proc` (already started, start event published) or handles its early exit now. */
  started(target: ExitTarget, proc: Proc): void;
  close(): void;
}

/** Called when a process exit must be published (state already recorded). */
export type ExitHandler = (target: ExitTarget, proc: Proc, exit: Exit) => void;
/**
 * Called when an init exit is seen, before execs are waited for (kill-all for a shared pid ns). Work it
 * returns finishes before the init exit is recorded: Wait and TaskExit come after it, as in runc-v2.
 */
export type InitExitHook = (target: ExitTarget, proc: Proc) => Promise<unknown> | undefined | void;
/**
 * Work to finish before an exit is recorded and published, or undefined for none. Used for terminals:
 * clients stop reading output once they see the exit (ctr does), so it must be in the FIFO first.
 */
export type SettleHook = (proc: Proc) => Promise<unknown> | undefined;

/** Bounds of the router's waits, in ms. */
export interface ExitLimits {
  /** How long an exit waits for the replies of Kills in flight on its container. */
  killReplyMs: number;
  /** How long a held init exit waits for live execs before the container is told to end them. */
  execHoldMs: number;
  /** How much longer it waits after that before it is published anyway. */
  execGraceMs: number;
}

export const DEFAULT_EXIT_LIMITS: ExitLimits = { killReplyMs: 5000, execHoldMs: 10_000, execGraceMs: 2000 };

export interface ExitRouterOptions {
  /** A held init exit waited `execHoldMs`: abort the target's exec starts and kill its exec processes. */
  onHoldExpired?: (target: ExitTarget) => void;
  limits?: Partial<ExitLimits>;
}

interface Entry {
  target: ExitTarget;
  proc: Proc;
}

interface HeldInit {
  finish: () => void;
  timer: NodeJS.Timeout;
}

/** Kills in flight on one target, and the exits waiting for their replies. */
interface KillsInFlight {
  count: number;
  waiters: (() => void)[];
}

export class ExitRouter {
  private readonly running = new Map<number, Entry[]>();
  private readonly buffers = new Set<Exit[]>();
  private readonly heldInits = new Map<ExitTarget, HeldInit>();
  private readonly kills = new Map<ExitTarget, KillsInFlight>();
  private readonly settling = new Set<Proc>();
  private readonly limits: ExitLimits;
  private readonly onHoldExpired: (target: ExitTarget) => void;

  constructor(
    private readonly publishExit: ExitHandler,
    private readonly onInitExit: InitExitHook = () => {},
    private readonly settle: SettleHook = () => undefined,
    opts: ExitRouterOptions = {},
  ) {
    this.limits = { ...DEFAULT_EXIT_LIMITS, ...opts.limits };
    this.onHoldExpired = opts.onHoldExpired ?? (() => {});
  }

  /** Feeds one reaped exit. */
  handle(exit: Exit): void {
    for (const buf of this.buffers) if (buf.length < 4096) buf.push(exit);
    const entries = this.running.get(exit.pid);
    if (entries === undefined) return;
    this.running.delete(exit.pid);
    for (const e of entries) this.processExit(e.target, e.proc, exit);
  }

  /** Takes an early-exit buffer. Take it before running anything whose exit must not be lost. */
  subscribe(): EarlyExits {
    const buf: Exit[] = [];
    this.buffers.add(buf);
    return {
      started: (target, proc) => {
        this.buffers.delete(buf);
        const early = proc.pid > 0 ? buf.find((e) => e.pid === proc.pid) : undefined;
        if (early !== undefined) this.processExit(target, proc, early);
        else if (proc.pid > 0) this.track(target, proc);
      },
      close: () => this.buffers.delete(buf),
    };
  }

  /** Stops routing exits of `proc`: a deleted process, or an init being started (pair with a subscription). */
  forget(proc: Proc): void {
    const entries = this.running.get(proc.pid);
    if (entries === undefined) return;
    const rest = entries.filter((e) => e.proc !== proc);
    if (rest.length > 0) this.running.set(proc.pid, rest);
    else this.running.delete(proc.pid);
  }

  /** Call when an exec's Start failed after `liveExecs` was incremented. */
  execStartFailed(target: ExitTarget): void {
    this.execDone(target);
  }

  /**
   * A Kill on `target` is in flight: exits of its processes are recorded and published only once the
   * returned release was called (the Kill's reply was written), or after `killReplyMs`. Idempotent.
   */
  holdExits(target: ExitTarget): () => void {
    let k = this.kills.get(target);
    if (k === undefined) this.kills.set(target, (k = { count: 0, waiters: [] }));
    const kills = k;
    kills.count++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--kills.count > 0) return;
      if (this.kills.get(target) === kills) this.kills.delete(target);
      for (const w of kills.waiters.splice(0)) w();
    };
  }

  private track(target: ExitTarget, proc: Proc): void {
    const entries = this.running.get(proc.pid) ?? [];
    entries.push({ target, proc });
    this.running.set(proc.pid, entries);
  }

  private processExit(target: ExitTarget, proc: Proc, exit: Exit): void {
    if (!proc.isInit) {
      if (proc.hasExited || this.settling.has(proc)) return;
      this.record(target, proc, exit, () => this.execDone(target));
      return;
    }
    if (target.initExited) return;
    target.initExited = true;
    const before = this.onInitExit(target, proc) ?? undefined;
    const finish = () => this.record(target, proc, exit, () => {}, before);
    if (target.liveExecs <= 0) return finish();
    const held: HeldInit = {
      finish,
      timer: setTimeout(() => {
        this.onHoldExpired(target);
        held.timer = setTimeout(() => this.releaseHeld(target), this.limits.execGraceMs);
      }, this.limits.execHoldMs),
    };
    this.heldInits.set(target, held);
  }

  /**
   * Records the exit (unblocks Wait) and publishes it, after `before` and the settle hook's work if any,
   * then after the replies of Kills in flight on the target at that moment.
   */
  private record(target: ExitTarget, proc: Proc, exit: Exit, then: () => void, before?: Promise<unknown>): void {
    const done = () => {
      this.settling.delete(proc);
      proc.setExited(exit.status, exit.at);
      this.publishExit(target, proc, exit);
      then();
    };
    const afterKills = () => {
      const replies = this.killReplies(target);
      if (replies === undefined) return done();
      void replies.then(done);
    };
    const settle = this.settle(proc);
    const pending = before === undefined ? settle : settle === undefined ? before : Promise.allSettled([before, settle]);
    if (pending === undefined && !this.kills.has(target)) return done();
    this.settling.add(proc);
    if (pending === undefined) return afterKills();
    void pending.then(afterKills, afterKills);
  }

  /** Resolves once no Kill is in flight on `target` (or after `killReplyMs`); undefined if none is now. */
  private killReplies(target: ExitTarget): Promise<void> | undefined {
    const kills = this.kills.get(target);
    if (kills === undefined) return undefined;
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, this.limits.killReplyMs);
      kills.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private execDone(target: ExitTarget): void {
    target.liveExecs = Math.max(0, target.liveExecs - 1);
    if (target.liveExecs <= 0) this.releaseHeld(target);
  }

  /** Publishes a held init exit: its execs are gone, or the hold's bound passed. */
  private releaseHeld(target: ExitTarget): void {
    const held = this.heldInits.get(target);
    if (held === undefined) return;
    this.heldInits.delete(target);
    clearTimeout(held.timer);
    held.finish();
  }
}
