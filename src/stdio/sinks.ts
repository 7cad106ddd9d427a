/**
 * The output side of copied stdio, FIFO and file modes: where a non-terminal process's pipes (io.ts) and a
 * terminal's master (console.ts) are copied to. A logging binary reads the pipes itself and needs none.
 */
import { constants, createWriteStream, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import type { Writable } from "node:stream";
import { ShimError } from "../errdefs.js";
import type { Logger } from "../log.js";
import { Fanin } from "./copy.js";
import { OutputFifo } from "./fifo.js";
import { StallGuard, type StallOptions } from "./stall.js";
import type { StdioTarget } from "./uri.js";

/** What a sink needs of IOOptions (io.ts), which extends this: declared here so sinks.ts never imports io.ts back. */
export interface SinkOptions {
  id: string;
  log?: Logger;
  /** Overrides of the stalled-FIFO limits (tests); see stall.ts. */
  outputStall?: StallOptions;
}

/** A sink for one or both output streams: where copied bytes go, and what to release at the end. */
export interface OutputSinks {
  stdout: Fanin | undefined;
  stderr: Fanin | undefined;
  release: Array<() => void>;
  /** For a stdout FIFO: the bytes written to it that its reader has not taken yet. */
  unread?: () => number;
  /** Per output FIFO: whether its reader is gone (StallGuard.readerGone), for drainCopies. */
  readerGone: Array<() => boolean>;
  /** Per sink: bytes handed to it that are not yet in the file or taken by the FIFO's reader. */
  pending: Array<() => number>;
}

/**
 * Opens the output side named by stdout/stderr for copying (FIFO or file mode), with `counts[i]` sources
 * expected per stream. One writer when stdout and stderr name the same FIFO. Not for binary mode. A FIFO's
 * writer is wrapped in a {@link StallGuard}: a FIFO nobody reads never blocks the container.
 */
export function openSinks(
  targets: [StdioTarget | null, StdioTarget | null],
  counts: [number, number],
  opts: SinkOptions,
): OutputSinks {
  const log = opts.log;
  const sinks: OutputSinks = { stdout: undefined, stderr: undefined, release: [], readerGone: [], pending: [] };
  try {
    const [out, err] = targets;
    if (out?.kind === "file") {
      const dest = openAppendFile(out.path);
      sinks.release.push(() => dest.destroy());
      sinks.pending.push(() => dest.writableLength);
      sinks.stdout = sinks.stderr = new Fanin(dest, counts[0] + counts[1], log);
      return sinks;
    }
    const guarded = (f: OutputFifo, stream: string): StallGuard => {
      const g = new StallGuard(f.stream, () => f.unread(), { ...opts.outputStall, stream, id: opts.id, log });
      sinks.readerGone.push(() => g.readerGone());
      sinks.pending.push(() => g.bufferedBytes + f.unread());
      return g;
    };
    const fifo = (t: StdioTarget | null): OutputFifo | undefined => {
      if (t === null) return undefined;
      if (t.kind !== "fifo") throw new ShimError("InvalidArgument", `Cannot mix stdio kinds: got ${t.kind} with a FIFO`);
      const f = OutputFifo.open(t.path, log);
      sinks.release.push(() => f.close());
      return f;
    };
    const o = fifo(out);
    if (o !== undefined) sinks.unread = () => o.unread();
    if (o !== undefined && err?.kind === "fifo" && out?.kind === "fifo" && err.path === out.path) {
      sinks.stdout = sinks.stderr = new Fanin(guarded(o, "stdout+stderr"), counts[0] + counts[1], log);
      return sinks;
    }
    if (o !== undefined) sinks.stdout = new Fanin(guarded(o, "stdout"), counts[0], log);
    const e = fifo(err);
    if (e !== undefined) sinks.stderr = new Fanin(guarded(e, "stderr"), counts[1], log);
    return sinks;
  } catch (e) {
    for (const r of sinks.release) r();
    throw e;
  }
}

/** Opens `path` O_APPEND|O_CREAT (dir 0755, file 0644) as a write stream that closes its fd when done. */
function openAppendFile(path: string): Writable {
  const { O_APPEND, O_CREAT, O_WRONLY } = constants;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    const fd = openSync(path, O_APPEND | O_CREAT | O_WRONLY, 0o644);
    return createWriteStream("", { fd, autoClose: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new ShimError("Internal", `Cannot open stdio file "${path}": ${code}`, { cause: err });
  }
}
