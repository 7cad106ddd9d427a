// Folder src/shim/daemon:
// Owns: the serving daemon: the composition root of one daemon (task and sandbox services, socket, events, log
//   FIFO, dump), its shutdown and its linger.
// Must not import: cgroups, runc, shim/entry, shim/manager, shim/packaging, shim/spare, stdio.

/**
 * The linger of a namespace daemon (issue 19; `linger_ms` in the shim config, docs/grouping.md): once a
 * Shutdown was asked for and the daemon holds nothing (no container, sandbox or joined id), it does not exit
 * at once but keeps serving for `lingerMs`, so that a namespace whose pods come and go does not boot a new
 * daemon for each. A `start` in that window joins it (join.ts) and the linger stops; if nothing comes, the
 * daemon exits exactly as it would have without a linger. 0 (pod grouping, or `linger_ms = 0`): exit at once.
 *
 * Races: everything runs on the one JS thread. When the timer fires it asks again whether the daemon holds
 * nothing; a Join served before that holds an id, so the daemon stays. Once it decided to exit, Shutdown's
 * `requested` is set in the same tick, so a later Join is refused (Unavailable) and `start` spawns a new daemon.
 */

import type { Method } from "../../ttrpc/index.js";

/** What the SIGUSR1 dump shows (src/shim/diagnostics/dump.ts). */
export interface LingerSnapshot {
  /** The configured linger. */
  lingerMs: number;
  /** How long the daemon has been lingering (holding nothing); absent when it is not lingering. */
  idleMs?: number;
}

export class Linger {
  private timer: NodeJS.Timeout | undefined;
  private since: number | undefined;
  private stopped = false;

  /**
   * `holdsNothing`: true when the daemon may exit (a Shutdown was asked for, nothing is held); asked again when
   * the timer fires. `exit`: begins the daemon's shutdown with the reason given.
   */
  constructor(
    readonly lingerMs: number,
    private readonly holdsNothing: () => boolean,
    private readonly exit: (reason: string) => void,
    private readonly onStart: (lingerMs: number) => void = () => {},
  ) {}

  /** True while the timer runs. */
  get lingering(): boolean {
    return this.timer !== undefined;
  }

  /**
   * Called whenever the daemon might exit (a Shutdown was answered, a member was released). Exits at once
   * with no linger; else starts the linger unless it already runs (a repeated call does not extend it).
   */
  idle(): void {
    if (this.stopped || !this.holdsNothing()) return;
    if (this.lingerMs <= 0) {
      this.exit("shutdown requested");
      return;
    }
    if (this.timer !== undefined) return;
    this.since = Date.now();
    // Ref'd: the daemon must not end with its loop drained while it lingers, only through exit().
    this.timer = setTimeout(() => this.fire(), this.lingerMs);
    this.onStart(this.lingerMs);
  }

  /** Something arrived (a Join, a Create): the linger stops; the next idle() starts a whole one again. */
  busy(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.since = undefined;
  }

  /** The daemon is shutting down (the linger ended, SIGTERM): no timer may start or outlive it. */
  stop(): void {
    this.stopped = true;
    this.busy();
  }

  /**
   * Wraps a method that may take something on (Create, CreateSandbox, Join): the linger stops when it is called.
   * Once it settled, a daemon that may exit (`mayExit`: a Shutdown was asked for) and still holds nothing
   * lingers afresh, so a Create that failed or a Join that was refused does not keep it forever.
   */
  wrap(method: Method, mayExit: () => boolean): Method {
    return {
      call: async (payload, ctx) => {
        this.busy();
        try {
          return await method.call(payload, ctx);
        } finally {
          if (mayExit()) this.idle();
        }
      },
    };
  }

  snapshot(now: number = Date.now()): LingerSnapshot {
    return this.since === undefined ? { lingerMs: this.lingerMs } : { lingerMs: this.lingerMs, idleMs: now - this.since };
  }

  private fire(): void {
    this.busy();
    if (this.holdsNothing()) this.exit("linger ended");
  }
}
