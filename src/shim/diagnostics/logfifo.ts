/**
 * The bundle's `log` FIFO (shared/protocol.md §2.3): containerd holds it open O_RDWR and copies what it
 * reads into its own log. We open it O_WRONLY|O_NONBLOCK, so opening never blocks and a full pipe drops
 * lines (EAGAIN) instead of stalling the event loop or growing memory.
 *
 * A daemon that serves several bundles (namespace grouping, docs/grouping.md) logs to the FIFO of the
 * bundle it was started for. When containerd removes that bundle it closes its reader, and writes fail
 * with EPIPE: the sink then moves to the `log` FIFO of another bundle the daemon still holds (asked from
 * `fallbacks`), so the daemon's lines keep reaching containerd's log.
 */
import { closeSync, constants, fstatSync, openSync, writeSync } from "node:fs";
import path from "node:path";
import { Logger, nullSink, type Level, type Sink } from "../../log.js";

/** The log FIFO's logger. */
export interface LogFifo {
  readonly log: Logger;
  /** The sink (undefined when there is no FIFO or no reader), to hand it other bundles once the daemon knows them. */
  readonly sink: FifoSink | undefined;
  /** Closes the FIFO (the warm spare, once adopted); the logger writes nowhere after. Idempotent. */
  close(): void;
}

/** How often, at most, a sink without a reader looks for another FIFO. */
const RETARGET_EVERY_MS = 1000;

/** Opens `<dir>/log` O_WRONLY|O_NONBLOCK if it is a FIFO with a reader; undefined otherwise. Never throws. */
function openFifo(dir: string): number | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path.join(dir, "log"), constants.O_WRONLY | constants.O_NONBLOCK);
    if (fstatSync(fd).isFIFO()) return fd;
    closeSync(fd);
  } catch {
    // ENOENT (no containerd), ENXIO (no reader): no FIFO here.
    if (fd !== undefined) closeSync(fd);
  }
  return undefined;
}

/**
 * A sink on a log FIFO that follows the live bundles. Only this object uses and closes its fd, so it can
 * close the old one when it moves, and once closed it writes nowhere (never to a reused fd number).
 */
export class FifoSink implements Sink {
  dropped = 0;
  private lastLook = 0;

  constructor(
    private fd: number,
    private dir: string,
    /** Bundle directories to move to when the current FIFO lost its reader. */
    public fallbacks: () => Iterable<string> = () => [],
    private readonly now: () => number = Date.now,
  ) {}

  /** The bundle directory whose FIFO takes the lines now. */
  get target(): string {
    return this.dir;
  }

  write(line: string): void {
    if (this.fd < 0) {
      this.dropped++;
      return;
    }
    try {
      writeSync(this.fd, line);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EPIPE" || !this.retarget()) {
        this.dropped++;
        return;
      }
    }
    try {
      writeSync(this.fd, line);
    } catch {
      this.dropped++;
    }
  }

  /** Closes the FIFO; later lines are dropped (counted). Idempotent. */
  close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    closeSync(fd);
  }

  /** Moves to the first other bundle's FIFO that has a reader; true if it moved. */
  private retarget(): boolean {
    const t = this.now();
    if (t - this.lastLook < RETARGET_EVERY_MS) return false;
    this.lastLook = t;
    for (const dir of this.fallbacks()) {
      if (dir === this.dir) continue;
      const fd = openFifo(dir);
      if (fd === undefined) continue;
      closeSync(this.fd);
      this.fd = fd;
      this.dir = dir;
      return true;
    }
    return false;
  }
}

/**
 * Opens `<dir>/log` for writing if it is a FIFO with a reader, and returns a logger on it (a logger that
 * writes nowhere otherwise). Never throws and never blocks.
 */
export function openLogFifo(dir: string, level: Level, fields: Record<string, string> = {}): LogFifo {
  const fd = openFifo(dir);
  const sink = fd === undefined ? undefined : new FifoSink(fd, dir);
  const log = new Logger(sink ?? nullSink, level, { runtime: "io.containerd.ts.v2", ...fields });
  return { log, sink, close: () => sink?.close() };
}
