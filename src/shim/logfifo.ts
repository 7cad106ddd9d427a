/**
 * The bundle's `log` FIFO (shared/protocol.md §2.3): containerd holds it open O_RDWR and copies what it
 * reads into its own log. We open it O_WRONLY|O_NONBLOCK, so opening never blocks and a full pipe drops
 * lines (FdSink) instead of stalling the event loop or growing memory.
 */
import { closeSync, constants, fstatSync, openSync } from "node:fs";
import path from "node:path";
import { FdSink, Logger, nullSink, type Level } from "../log.js";

/** The log FIFO's logger. The fd stays open until the process exits (a closed fd could be reused). */
export interface LogFifo {
  readonly log: Logger;
  /** The FIFO's fd, or undefined when there is no FIFO or no reader. */
  readonly fd: number | undefined;
}

/**
 * Opens `<dir>/log` for writing if it is a FIFO with a reader, and returns a logger on it (a logger that
 * writes nowhere otherwise). Never throws and never blocks.
 */
export function openLogFifo(dir: string, level: Level, fields: Record<string, string> = {}): LogFifo {
  let fd: number | undefined;
  try {
    fd = openSync(path.join(dir, "log"), constants.O_WRONLY | constants.O_NONBLOCK);
    if (!fstatSync(fd).isFIFO()) {
      closeSync(fd);
      fd = undefined;
    }
  } catch {
    // ENOENT (no containerd), ENXIO (no reader): run without a log.
    fd = undefined;
  }
  const log = new Logger(fd === undefined ? nullSink : new FdSink(fd), level, { runtime: "io.containerd.ts.v2", ...fields });
  return { log, fd };
}
