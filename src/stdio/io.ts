/**
 * Stdio of a non-terminal process: real pipes for runc, copied to and from containerd's FIFOs, appended to
 * a file, or read by a logging binary (protocol.md §4.6, peers.md §2.4).
 */
import { fchownSync } from "node:fs";
import type { Readable } from "node:stream";
import { ShimError } from "../errdefs.js";
import type { Logger } from "../log.js";
import { fdReader, fdWriter, pipe2 } from "../sys/index.js";
import { BinaryLogger, type PidRegistry } from "./binary.js";
import { drainCopies, READER_STALL_MS, waitSettled } from "./copy.js";
import { OwnedFd } from "./fd.js";
import { InputFifo, unreadOr0 } from "./fifo.js";
import { openSinks, type SinkOptions } from "./sinks.js";
import { parseStdio, type StdioTarget } from "./uri.js";

/** What containerd asked for (paths or URIs, "" = none). */
export interface StdioSpec {
  stdin: string;
  stdout: string;
  stderr: string;
  terminal: boolean;
}

/** The stdio of one process, owned by the task service from `openProcessIO` until `close()`. */
export interface ProcessIO {
  /** Container-side fds to hand to runc ("ignore" = /dev/null). Valid until `afterStart()`/`close()`. */
  readonly runcStdio: [number | "ignore", number | "ignore", number | "ignore"];
  /** Closes our copies of the container-side fds; call once runc create/exec returned (else no EOF). */
  afterStart(): void;
  /** CloseIO: drops our keep-alive stdin writer, so the container gets EOF once the client's writer closes. */
  closeStdin(): void;
  /** Waits for the output copies to finish (pipe EOF, FIFO writes flushed); false if `timeoutMs` passed first. */
  drain(opts: { timeoutMs: number }): Promise<boolean>;
  /**
   * At the process's exit, before it is reported: waits until its reader took what it wrote (ctr stops
   * reading the FIFOs once it has the exit status, and drops what is still in them). False when a reader
   * stopped taking data (detached) or `timeoutMs` passed first.
   */
  settle(opts: { timeoutMs: number }): Promise<boolean>;
  /** Closes every fd and stream this object owns, stops a logging binary. Idempotent. */
  close(): void;
}

/** Options for {@link openProcessIO} and `copyConsole`; `id`, `log` and `outputStall` come from {@link SinkOptions}. */
export interface IOOptions extends SinkOptions {
  /** Owner of the container-side pipe ends (runc Options io_uid/io_gid). */
  uid?: number;
  gid?: number;
  ns: string;
  /** Pids of logging binaries are registered here so the shim's reaper leaves them to libuv. */
  registry?: PidRegistry;
  signal?: AbortSignal;
}

/**
 * Prepares stdio for a non-terminal process: for each stream that is set, a real pipe whose container end
 * (fchown'd to uid/gid) goes to runc, and a copy between our end and the FIFO/file; or, for binary URIs, a
 * logging binary reading the pipes itself. Call `afterStart()` after runc returned, `drain()` after the
 * process exited, then `close()`.
 */
export async function openProcessIO(spec: StdioSpec, opts: IOOptions): Promise<ProcessIO> {
  opts.signal?.throwIfAborted();
  const targets = [parseStdio(spec.stdin), parseStdio(spec.stdout), parseStdio(spec.stderr)] as const;
  if (targets[0] !== null && targets[0].kind !== "fifo") {
    throw new ShimError("InvalidArgument", `Cannot use stdin "${spec.stdin}": only FIFOs are supported`);
  }
  const io = new PipeIO(opts.log);
  try {
    if (targets[0] !== null) io.openStdin(targets[0].path, opts);
    const out = targets[1];
    if (out?.kind === "binary") {
      const logger = await BinaryLogger.start(out.path, out.args, out.v2, opts);
      io.own(() => logger.close());
      io.onAfterStart(() => logger.closePipes());
      io.runcStdio[1] = logger.stdoutFd;
      io.runcStdio[2] = logger.stderrFd;
      chown(logger.stdoutFd, opts);
      chown(logger.stderrFd, opts);
    } else {
      io.openOutputs([out, targets[2]], opts);
    }
    return io;
  } catch (err) {
    io.close();
    throw err;
  }
}

function chown(fd: number, opts: IOOptions): void {
  if (opts.uid === undefined && opts.gid === undefined) return;
  try {
    fchownSync(fd, opts.uid ?? -1, opts.gid ?? -1);
  } catch (err) {
    throw new ShimError("Internal", `Cannot chown stdio pipe to ${opts.uid ?? -1}:${opts.gid ?? -1}`, { cause: err });
  }
}

class PipeIO implements ProcessIO {
  readonly runcStdio: [number | "ignore", number | "ignore", number | "ignore"] = ["ignore", "ignore", "ignore"];
  private readonly containerFds: OwnedFd[] = [];
  private readonly afterStartHooks: Array<() => void> = [];
  private readonly releases: Array<() => void> = [];
  private readonly copies: Promise<boolean>[] = [];
  private readonly readerGone: Array<() => boolean> = [];
  /** Our read ends of the output pipes, with their streams; and the sinks' pending counts (settle). */
  private readonly outputs: Array<{ fd: number; reader: Readable }> = [];
  private readonly sinkPending: Array<() => number> = [];
  private stdin: InputFifo | undefined;
  private closed = false;

  constructor(private readonly log?: Logger) {}

  own(release: () => void): void {
    this.releases.push(release);
  }

  /** A pipe whose read end goes to the container, fed from the stdin FIFO. */
  openStdin(path: string, opts: IOOptions): void {
    const w = this.pipe(0, opts);
    const writer = fdWriter(w);
    this.own(() => writer.destroy());
    const fifo = InputFifo.open(path, this.log);
    this.stdin = fifo;
    this.own(() => fifo.close());
    // pipe() ends the container's stdin when the FIFO reports EOF (client gone and CloseIO done).
    fifo.stream.pipe(writer);
    writer.on("error", (err) => {
      this.log?.debug("stdin copy stopped", { error: err });
      fifo.stream.destroy();
    });
  }

  /** Pipes for stdout/stderr whose write ends go to the container, copied into FIFOs or a file. */
  openOutputs(targets: [StdioTarget | null, StdioTarget | null], opts: IOOptions): void {
    const counts: [number, number] = [targets[0] === null ? 0 : 1, targets[1] === null ? 0 : 1];
    const sinks = openSinks(targets, counts, opts);
    for (const r of sinks.release) this.own(r);
    this.readerGone.push(...sinks.readerGone);
    this.sinkPending.push(...sinks.pending);
    const both = sinks.stdout !== undefined && sinks.stdout === sinks.stderr;
    for (const [i, fanin] of [[1, sinks.stdout], [2, sinks.stderr]] as const) {
      if (fanin === undefined || targets[i - 1] === null) continue;
      const r = this.pipe(i, opts);
      const reader = fdReader(r);
      this.outputs.push({ fd: r, reader });
      this.own(() => reader.destroy());
      fanin.add(reader);
      if (!both || i === 1) this.copies.push(fanin.done);
    }
  }

  /**
   * Makes a pipe for stdio slot `slot`; the container end is recorded for runc and afterStart, our end is
   * returned and the caller must wrap it in a stream at once (the stream then owns and closes it).
   */
  private pipe(slot: 0 | 1 | 2, opts: IOOptions): number {
    const [r, w] = pipe2().map((fd) => new OwnedFd(fd, this.log)) as [OwnedFd, OwnedFd];
    const [container, ours] = slot === 0 ? [r, w] : [w, r];
    this.containerFds.push(container);
    this.runcStdio[slot] = container.fd;
    try {
      chown(container.fd, opts);
    } catch (err) {
      ours.close();
      throw err;
    }
    return ours.take();
  }

  /** Runs `fn` in afterStart() (or close(), whichever comes first). */
  onAfterStart(fn: () => void): void {
    this.afterStartHooks.push(fn);
  }

  afterStart(): void {
    for (const fd of this.containerFds.splice(0)) fd.close();
    for (const fn of this.afterStartHooks.splice(0)) fn();
  }

  closeStdin(): void {
    this.stdin?.closeKeepAlive();
  }

  async drain(opts: { timeoutMs: number }): Promise<boolean> {
    return drainCopies(Promise.all(this.copies).then((r) => r.every(Boolean)), this.readerGone, opts);
  }

  async settle(opts: { timeoutMs: number }): Promise<boolean> {
    const copied = Promise.all(this.copies);
    return waitSettled(() => this.pendingBytes(), copied, { timeoutMs: opts.timeoutMs, stallMs: READER_STALL_MS });
  }

  /** Output bytes the reader has not taken yet: in our pipe ends (while open), in the shim, in the sinks. */
  private pendingBytes(): number {
    let n = 0;
    for (const { fd, reader } of this.outputs) {
      n += reader.readableLength;
      // The stream owns the fd and closes it once destroyed: only ask while it is open.
      if (!reader.destroyed && !reader.readableEnded) n += unreadOr0(fd);
    }
    for (const f of this.sinkPending) n += f();
    return n;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.afterStart();
    for (const release of this.releases.splice(0).reverse()) release();
  }
}
