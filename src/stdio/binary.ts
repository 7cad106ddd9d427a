// Folder src/stdio:
// Owns: a process's stdio: FIFOs, pipes, file:// and binary:// logging, the console socket and pty copies, and
//   output-stall handling.
// Must not import: cgroups, gen, runc, sandbox, shim, task, ttrpc.

/**
 * Logging binaries (`binary://` and `binary-v2://`, protocol.md §4.6): the logger reads the container's
 * stdout and stderr pipes directly on fds 3 and 4 and reports readiness on fd 5.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import type { Writable } from "node:stream";
import { ShimError } from "../errdefs.js";
import type { Logger } from "../log.js";
import { fdReader, fdWriter, pipe2 } from "../sys/index.js";
import { OwnedFd } from "./fd.js";

/** Pids that libuv reaps itself and the shim's reaper must leave alone (sys ChildRegistry). */
export interface PidRegistry {
  own(pid: number): void;
  disown(pid: number): void;
}

/** Options for {@link BinaryLogger.start}. */
export interface LoggerOptions {
  id: string;
  ns: string;
  registry?: PidRegistry;
  log?: Logger;
  signal?: AbortSignal;
}

/** How long a logger gets between SIGTERM and SIGKILL (mirrors the Go shim's 12 s). */
export const LOGGER_KILL_DELAY_MS = 12_000;

/**
 * A running logging binary. `stdoutFd`/`stderrFd` are the write ends of its input pipes (blocking, for
 * the container or for a console copy); the logger holds the read ends.
 */
export class BinaryLogger {
  /** Settles when the logger process has exited. */
  readonly exited: Promise<void>;
  private closed = false;
  private killTimer: NodeJS.Timeout | undefined;
  private stdoutSocket: Writable | undefined;

  private constructor(
    private readonly child: ChildProcess,
    private readonly stdout: OwnedFd,
    private readonly stderr: OwnedFd,
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once("exit", () => resolve());
    });
  }

  /** Spawns the logger and waits until it is ready (binary: a byte or EOF on fd 5; binary-v2: a byte). */
  static async start(path: string, args: string[], v2: boolean, opts: LoggerOptions): Promise<BinaryLogger> {
    opts.signal?.throwIfAborted();
    const fds: OwnedFd[] = [];
    let child: ChildProcess;
    try {
      for (let i = 0; i < 3; i++) fds.push(...pipe2().map((fd) => new OwnedFd(fd, opts.log)));
      const [outR, , errR, , , readyW] = fds as Six;
      child = spawn(path, args, {
        stdio: ["ignore", "ignore", "ignore", outR.fd, errR.fd, readyW.fd],
        env: { ...process.env, CONTAINER_ID: opts.id, CONTAINER_NAMESPACE: opts.ns },
      });
    } catch (err) {
      for (const fd of fds) fd.close();
      throw new ShimError("Internal", `Cannot start logging binary "${path}"`, { cause: err });
    }
    // The child has its copies now; keep only our ends: stdout/stderr write ends and the ready read end.
    const [outR, outW, errR, errW, readyR, readyW] = fds as Six;
    for (const fd of [outR, errR, readyW]) fd.close();
    const pid = child.pid;
    if (pid === undefined) {
      for (const fd of [outW, errW, readyR]) fd.close();
      const [err] = (await once(child, "error")) as [NodeJS.ErrnoException];
      throw new ShimError("Unknown", `Cannot start logging binary "${path}": ${err.code ?? err.message}`, { cause: err });
    }
    opts.registry?.own(pid);
    child.once("exit", () => opts.registry?.disown(pid));
    const logger = new BinaryLogger(child, outW, errW);
    try {
      await waitReady(child, readyR.take(), v2, path, opts.signal);
    } catch (err) {
      logger.kill();
      throw err;
    }
    opts.log?.debug("logging binary ready", { path, pid });
    return logger;
  }

  /** Our stdout write end, for runc (throws once the pipes were closed or {@link stdoutStream} took it). */
  get stdoutFd(): number {
    return this.stdout.fd;
  }

  /** Our stderr write end, for runc (throws once the pipes were closed). */
  get stderrFd(): number {
    return this.stderr.fd;
  }

  /**
   * Wraps our stdout write end in a stream (console copies write the pty output there). The stream owns
   * the fd from then on; `close()` destroys it.
   */
  stdoutStream(): Writable {
    this.stdoutSocket ??= fdWriter(this.stdout.take());
    return this.stdoutSocket;
  }

  /** Closes our pipe ends, then SIGTERM, and SIGKILL if still alive after 12 s. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.closePipes();
    if (!this.alive()) return;
    this.child.kill("SIGTERM");
    this.killTimer = setTimeout(() => {
      if (this.alive()) this.child.kill("SIGKILL");
    }, LOGGER_KILL_DELAY_MS);
    void this.exited.then(() => clearTimeout(this.killTimer));
  }

  private kill(): void {
    this.closed = true;
    this.closePipes();
    if (this.alive()) this.child.kill("SIGKILL");
  }

  /**
   * Closes our copies of the write ends (after runc started, so the logger sees EOF when the container's
   * last writer goes). Idempotent.
   */
  closePipes(): void {
    this.stdoutSocket?.destroy();
    this.stdout.close();
    this.stderr.close();
  }

  private alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
}

type Six = [OwnedFd, OwnedFd, OwnedFd, OwnedFd, OwnedFd, OwnedFd];

/** Waits for the readiness signal on `readyFd` (always closed on return). */
function waitReady(child: ChildProcess, readyFd: number, v2: boolean, path: string, signal?: AbortSignal): Promise<void> {
  const ready = fdReader(readyFd);
  return new Promise<void>((resolve, reject) => {
    const fail = (why: string, cause?: unknown) =>
      finish(new ShimError("Unknown", `Cannot start logging binary "${path}": ${why}`, { cause }));
    const finish = (err?: Error) => {
      ready.destroy();
      child.off("error", onError);
      signal?.removeEventListener("abort", onAbort);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onError = (err: Error) => fail((err as NodeJS.ErrnoException).code ?? err.message, err);
    const onAbort = () => finish(signal?.reason instanceof Error ? signal.reason : new Error("aborted"));
    child.once("error", onError);
    signal?.addEventListener("abort", onAbort, { once: true });
    ready.once("data", () => finish());
    // EOF on fd 5: the legacy protocol counts it as ready; v2 requires a byte first.
    ready.once("end", () => (v2 ? fail("it closed the ready pipe without signalling readiness") : finish()));
    ready.once("error", (err) => fail("reading the ready pipe failed", err));
  });
}
