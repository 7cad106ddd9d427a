/**
 * OOM watchers: call back once per OOM kill in a container's cgroup, from right after create until the
 * init exits. At init exit the owner calls `stop({ flush: true })`, which re-reads synchronously, so an
 * OOM that happened just before the exit is reported before the init's TaskExit is published
 * (containerd's internal/oom does the same on main; peers.md §2.7).
 *
 * - cgroup v1: eventfds registered for `memory.oom_control` through `cgroup.event_control`, one watched on
 *   the event loop (src/sys/eventfd.ts), one kept for the flush. The kernel also signals them when the cgroup
 *   is removed; such a wake-up finds the directory gone and is not reported.
 * - cgroup v2: inotify (`fs.watch`) on `memory.events`; reported when `oom_kill` increases. `oom_kill`,
 *   not `oom`: with a pod-level limit the `oom` event is charged to the pod's cgroup only.
 */
import { closeSync, existsSync, openSync, readFileSync, watch, writeFileSync, type FSWatcher } from "node:fs";
import path from "node:path";
import type { Logger } from "../log.js";
import { EventFd } from "../sys/index.js";
import { parseKeyValues, type ContainerCgroup } from "../cgroups/index.js";

/** A running OOM watcher. */
export interface OomWatcher {
  /** Stops watching (idempotent). With `flush`, first reports an OOM already signalled, synchronously. */
  stop(opts?: { flush?: boolean }): void;
}

/** Where a v1 watcher gets its eventfd (tests hand one whose watch fails). */
export interface OomSeams {
  eventFd?: () => EventFd;
}

/**
 * Starts watching `cg` for OOM kills; `onOom` runs on the event loop, never after `stop()` returned.
 * Returns undefined (and logs) when the cgroup has no memory controller or cannot be watched: OOM
 * events are best effort and never fail a create.
 */
export function watchOom(
  cg: ContainerCgroup | undefined, onOom: () => void, log: Logger, seams: OomSeams = {},
): OomWatcher | undefined {
  try {
    if (cg?.version === 1) {
      const dir = cg.dirs.get("memory");
      return dir === undefined ? undefined : new V1Watcher(dir, onOom, seams.eventFd ?? (() => EventFd.create()));
    }
    if (cg?.version === 2) return new V2Watcher(cg.dir, onOom, log);
  } catch (err) {
    log.warn("cannot watch cgroup for OOM kills", { err });
  }
  return undefined;
}

/**
 * cgroup v1: two eventfds registered on memory.oom_control; the kernel signals every registration. `live` is
 * watched; `tally` is never read but by a flush. On Bun the runtime reads `live`'s counter on its own loop
 * before the callback (src/sys/eventfd.ts), so a flush could not tell from `live` whether a signal is still
 * on its way; `tally` holds every signal since create, and `seen` those delivered through `live`.
 */
class V1Watcher implements OomWatcher {
  private readonly live: EventFd;
  private readonly tally: EventFd;
  private seen = 0n;
  private stopped = false;

  constructor(
    private readonly dir: string,
    private readonly onOom: () => void,
    eventFd: () => EventFd,
  ) {
    this.live = eventFd();
    try {
      this.tally = eventFd();
    } catch (err) {
      this.live.close();
      throw err;
    }
    try {
      // The kernel keeps the eventfds, not the control file, so the latter is closed at once.
      const control = openSync(path.join(dir, "memory.oom_control"), "r");
      try {
        for (const efd of [this.live, this.tally]) writeFileSync(path.join(dir, "cgroup.event_control"), `${efd.fd} ${control}`);
      } finally {
        closeSync(control);
      }
      this.live.onSignal((n) => {
        this.seen += n;
        this.report();
      });
    } catch (err) {
      this.close(); // registered or not: closing an eventfd also ends the kernel's registration
      throw err;
    }
  }

  private report(): void {
    if (!this.stopped && existsSync(this.dir)) this.onOom();
  }

  stop(opts: { flush?: boolean } = {}): void {
    if (this.stopped) return;
    if (opts.flush && this.tally.read() > this.seen) this.report();
    this.stopped = true;
    this.close();
  }

  private close(): void {
    this.live.close();
    this.tally.close();
  }
}

/** cgroup v2: memory.events oom_kill counter. */
class V2Watcher implements OomWatcher {
  private readonly file: string;
  private readonly watcher: FSWatcher;
  private last: bigint;
  private stopped = false;

  constructor(
    dir: string,
    private readonly onOom: () => void,
    log: Logger,
  ) {
    this.file = path.join(dir, "memory.events");
    this.last = this.read() ?? 0n;
    this.watcher = watch(this.file, { persistent: false }, () => this.check());
    // A removed cgroup ends the watch with an error; nothing is left to report then.
    this.watcher.on("error", (err) => {
      if (!this.stopped) log.debug("memory.events watch ended", { file: this.file, err });
    });
  }

  /** The oom_kill counter, or undefined when the file is gone. A small kernfs read: kept synchronous. */
  private read(): bigint | undefined {
    try {
      return parseKeyValues(readFileSync(this.file, "utf8")).get("oom_kill");
    } catch {
      return undefined;
    }
  }

  private check(): void {
    if (this.stopped) return;
    const n = this.read();
    if (n === undefined || n <= this.last) return;
    this.last = n;
    this.onOom();
  }

  stop(opts: { flush?: boolean } = {}): void {
    if (this.stopped) return;
    if (opts.flush) this.check();
    this.stopped = true;
    this.watcher.close();
  }
}
