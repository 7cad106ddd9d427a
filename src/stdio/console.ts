/**
 * Terminal processes (protocol.md §8.4, peers.md §2.5): the console socket runc sends the pty master on,
 * and the copies between the master and containerd's FIFOs.
 *
 * Reading the master: src/sys `ptyReader`, which never closes the fd (a closed fd number can be reused at
 * once; reading or resizing it would hit some other file), so the master is closed here, after the reader
 * is destroyed. On Node it reads the master in batches of up to 64 KiB (a pty gives at most 4 KiB per read);
 * on Bun it is Bun's own epoll reader on a dup of the fd. EIO ("no slave open") ends that stream. After EIO
 * a 250 ms timer re-reads with non-blocking `readSync` until the process exits, in case a slave is reopened
 * (e.g. systemd reopening /dev/console): with no slave open the master reports a hang-up at every poll, so
 * a level-triggered watch (all the native seam has) would spin; only an edge-triggered one could replace it.
 * Writing stdin into the master: pty.ts MasterWriter (non-blocking, waits for room on EAGAIN).
 */
import { mkdtempSync, readSync, rmSync, chmodSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Writable, type Readable } from "node:stream";
import { ShimError } from "../errdefs.js";
import { ptyReader, recvFdAsync, setNonblocking, setWinsize } from "../sys/index.js";
import { BinaryLogger } from "./binary.js";
import { drainCopies, Fanin, READER_STALL_MS, waitConsumed } from "./copy.js";
import { OwnedFd } from "./fd.js";
import { InputFifo } from "./fifo.js";
import type { IOOptions, ProcessIO, StdioSpec } from "./io.js";
import { MasterWriter } from "./pty.js";
import { openSinks } from "./sinks.js";
import { parseStdio } from "./uri.js";

/** A unix socket in a fresh `pty*` directory on which runc sends the pty master (`--console-socket`). */
export class ConsoleSocket {
  private closed = false;

  private constructor(
    private readonly server: net.Server,
    private readonly dir: string,
    /** Absolute socket path for `runc --console-socket`. */
    readonly path: string,
  ) {}

  /** Creates `$XDG_RUNTIME_DIR/pty*` (else the temp dir) and listens on `pty.sock` in it. */
  static async create(): Promise<ConsoleSocket> {
    const xdg = process.env["XDG_RUNTIME_DIR"];
    const dir = mkdtempSync(join(xdg !== undefined && xdg !== "" ? xdg : tmpdir(), "pty"));
    const path = join(dir, "pty.sock");
    // pauseOnConnect: libuv must not read the connection before recvmsg() took the fd (see sys recvFd).
    const server = net.createServer({ pauseOnConnect: true });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(path, () => resolve());
      });
      if (xdg !== undefined && xdg !== "") chmodSync(path, 0o1755);
    } catch (err) {
      server.close();
      rmSync(dir, { recursive: true, force: true });
      throw new ShimError("Internal", `Cannot listen on console socket "${path}"`, { cause: err });
    }
    return new ConsoleSocket(server, dir, path);
  }

  /** Accepts one connection, receives the pty master (SCM_RIGHTS), then closes the socket and its dir. */
  async receiveMaster(opts: { signal?: AbortSignal } = {}): Promise<number> {
    opts.signal?.throwIfAborted();
    if (this.closed) throw new ShimError("FailedPrecondition", `Cannot receive pty master: console socket closed`);
    const conn = await new Promise<net.Socket>((resolve, reject) => {
      const onAbort = () => done(undefined, opts.signal?.reason);
      const onClose = () => done(undefined, new ShimError("Canceled", `Cannot receive pty master: console socket closed`));
      const done = (c: net.Socket | undefined, err?: unknown) => {
        this.server.off("connection", done).off("close", onClose);
        opts.signal?.removeEventListener("abort", onAbort);
        if (c !== undefined) resolve(c);
        else reject(err);
      };
      this.server.on("connection", done).once("close", onClose);
      opts.signal?.addEventListener("abort", onAbort, { once: true });
    });
    try {
      const fd = (conn as unknown as { _handle: { fd: number } })._handle.fd;
      return await recvFdAsync(fd, { signal: opts.signal });
    } finally {
      conn.destroy();
      this.close();
    }
  }

  /** Stops listening and removes the directory. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A terminal process's IO: {@link ProcessIO} plus window resizing. */
export interface ConsoleIO extends ProcessIO {
  /** TIOCSWINSZ on the master; a no-op once the console is closed. */
  resize(cols: number, rows: number): void;
}

/**
 * Copies the pty `master` (owned from now on) to stdout (FIFO, file or logging binary; discarded if
 * unset) and the stdin FIFO into the master. When stdin reaches EOF the console is shut down (the
 * process sees a hangup), as the Go shim does. `drain()` waits for the master to report that no slave is
 * open (the process exited), reads what is left, and flushes stdout.
 */
export async function copyConsole(master: number, spec: StdioSpec, opts: IOOptions): Promise<ConsoleIO> {
  const io = new PtyCopy(master, new OwnedFd(master, opts.log));
  try {
    opts.signal?.throwIfAborted();
    setNonblocking(master, true);
    io.start();
    const out = parseStdio(spec.stdout);
    if (out?.kind === "binary") {
      const logger = await BinaryLogger.start(out.path, out.args, out.v2, opts);
      io.own(() => logger.close());
      io.output(new Fanin(logger.stdoutStream(), 1, opts.log));
    } else if (out !== null) {
      const sinks = openSinks([out, null], [1, 0], opts);
      for (const r of sinks.release) io.own(r);
      if (sinks.stdout !== undefined) io.output(sinks.stdout);
      if (sinks.unread !== undefined) io.unreadOutput = sinks.unread;
      io.outputReaderGone = sinks.readerGone;
    } else {
      io.output(new Fanin(new Writable({ write: (_c, _e, cb) => cb() }), 1, opts.log));
    }
    const stdin = parseStdio(spec.stdin);
    if (stdin?.kind === "fifo") io.input(InputFifo.open(stdin.path, opts.log));
    return io;
  } catch (err) {
    io.close();
    throw err;
  }
}

const POLL_MS = 250;
const CHUNK = 32 * 1024;

class PtyCopy implements ConsoleIO {
  readonly runcStdio: [number | "ignore", number | "ignore", number | "ignore"] = ["ignore", "ignore", "ignore"];
  /** Everything read from the master, in order; piped into the stdout sink. */
  private readonly out = new PassThrough();
  private reader: Readable | undefined;
  private writer: MasterWriter | undefined;
  private readerEnded = false;
  /** Settles when the reader ended (EIO: no slave open) or was destroyed. */
  private readerDone: Promise<void> = Promise.resolve();
  private masterClosed = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private copied: Promise<boolean> = Promise.resolve(true);
  private stdin: InputFifo | undefined;
  private readonly releases: Array<() => void> = [];
  private closed = false;
  /** Set for a stdout FIFO: what its reader has not taken yet. */
  unreadOutput: (() => number) | undefined;
  /** Per output FIFO: whether its reader is gone (for drain). */
  outputReaderGone: Array<() => boolean> = [];

  constructor(
    private readonly master: number,
    /** Closes the master, once: neither engine's pty reader closes it. */
    private readonly owner: OwnedFd,
  ) {}

  own(release: () => void): void {
    this.releases.push(release);
  }

  /** Starts reading the master (which stays ours: closeMaster closes it). */
  start(): void {
    try {
      this.reader = ptyReader(this.master);
    } catch (err) {
      this.closeMaster();
      throw new ShimError("Internal", `Cannot read pty master`, { cause: err });
    }
    const reader = this.reader;
    this.readerDone = new Promise<void>((resolve) => {
      reader.on("error", () => (this.onSlaveGone(), resolve()));
      reader.on("end", () => (this.onSlaveGone(), resolve()));
      reader.on("close", () => resolve());
    });
    this.reader.pipe(this.out, { end: false });
  }

  output(fanin: Fanin): void {
    fanin.add(this.out);
    this.copied = fanin.done;
  }

  input(fifo: InputFifo): void {
    this.stdin = fifo;
    const writer = new MasterWriter(this.master, () => this.masterClosed);
    this.writer = writer;
    fifo.stream.pipe(writer);
    // Mirrors the Go shim: stdin EOF (client gone after CloseIO) shuts the console down and closes the
    // master, so the process sees a hangup.
    fifo.stream.once("end", () => {
      this.shutdown();
      this.closeMaster();
    });
  }

  /** EIO: no slave is open right now. Keep the fd and look again on a slow timer. */
  private onSlaveGone(): void {
    if (this.readerEnded || this.closed) return;
    this.readerEnded = true;
    this.pollTimer = setInterval(() => this.sweep(), POLL_MS);
  }

  /** Reads whatever the master holds without blocking (`final`: even past stdout's high-water mark). */
  private sweep(final = false): void {
    if (this.masterClosed || (!final && this.out.writableNeedDrain)) return;
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      let n: number;
      try {
        n = readSync(this.master, buf, 0, CHUNK, null);
      } catch {
        return; // EAGAIN (slave open, nothing to read) or EIO (no slave): look again later
      }
      if (n <= 0) return;
      this.out.write(Buffer.from(buf.subarray(0, n)));
    }
  }

  /** Final read after the process exited, then end stdout. */
  private shutdown(): void {
    if (this.closed || this.out.writableEnded) return;
    clearInterval(this.pollTimer);
    if (this.readerEnded) this.sweep(true);
    this.reader?.unpipe(this.out);
    this.out.end();
  }

  /** Closes the master, after stopping everything that reads, writes or watches it. */
  private closeMaster(): void {
    if (this.masterClosed) return;
    this.masterClosed = true;
    clearInterval(this.pollTimer);
    this.reader?.destroy(); // neither engine's pty reader closes the master
    // A writer waiting for room watches a dup of the master, which would keep the pty open (no hang-up).
    this.writer?.destroy();
    this.owner.close();
  }

  resize(cols: number, rows: number): void {
    if (this.masterClosed) return;
    setWinsize(this.master, cols, rows);
  }

  afterStart(): void {}

  closeStdin(): void {
    this.stdin?.closeKeepAlive();
  }

  /**
   * Waits for the process's last output to reach stdout, then (FIFO only, within the same budget) for the
   * FIFO's reader to take it: ctr stops reading a terminal once it sees the exit, so output still in the
   * FIFO then is lost. A reader that takes nothing for READER_STALL_MS is taken as detached.
   */
  async drain(opts: { timeoutMs: number }): Promise<boolean> {
    const deadline = Date.now() + opts.timeoutMs;
    const all = this.readerDone.then(() => {
      this.shutdown();
      return this.copied;
    });
    const copied = await drainCopies(all, this.outputReaderGone, opts);
    if (copied && this.unreadOutput !== undefined) {
      await waitConsumed(this.unreadOutput, { timeoutMs: deadline - Date.now(), stallMs: READER_STALL_MS });
    }
    return copied;
  }

  /** A terminal's exit: its output reaches the FIFO and the reader takes it, as in drain(). */
  settle(opts: { timeoutMs: number }): Promise<boolean> {
    return this.drain(opts);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stdin?.close();
    this.closeMaster();
    this.out.destroy();
    for (const release of this.releases.splice(0).reverse()) release();
  }
}
