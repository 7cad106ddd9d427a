/**
 * Opening containerd's FIFOs without blocking the event loop or the libuv threadpool: every open is a
 * synchronous `open(2)` with O_NONBLOCK, which never waits for the peer. Streams come from src/sys
 * (`fdReader`/`fdWriter`: libuv pipe handles on Node, Bun's fd reader/writer on Bun), so reads and writes
 * are epoll-driven and writes apply backpressure.
 */
import { constants, fstatSync, openSync } from "node:fs";
import type { Readable, Writable } from "node:stream";
import { ShimError } from "../errdefs.js";
import type { Logger } from "../log.js";
import { fdReader, fdWriter, unreadBytes } from "../sys/index.js";
import { OwnedFd } from "./fd.js";

const { O_RDONLY, O_WRONLY, O_NONBLOCK } = constants;

/**
 * Opens `path` with O_NONBLOCK added to `flags` (libuv adds O_CLOEXEC); wraps errors with the FIFO's role.
 * Anything but a FIFO (a regular file or a device named as stdio) is InvalidArgument.
 */
function openNonblocking(path: string, flags: number, role: string, log: Logger | undefined): OwnedFd {
  let fd: OwnedFd;
  try {
    fd = new OwnedFd(openSync(path, flags | O_NONBLOCK), log);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    const shimCode = code === "ENOENT" ? "NotFound" : "Internal";
    throw new ShimError(shimCode, `Cannot open ${role} FIFO "${path}": ${code}`, { cause: err });
  }
  if (!fstatSync(fd.fd).isFIFO()) {
    fd.close();
    throw new ShimError("InvalidArgument", `Cannot open ${role} FIFO "${path}": not a FIFO`);
  }
  return fd;
}

/** Wraps `fd` in a stream (which then owns it); on failure closes `fd` and `other`, and says which FIFO. */
function adopt<T>(fd: OwnedFd, other: OwnedFd, wrap: (n: number) => T, role: string, path: string): T {
  let stream: T;
  try {
    stream = wrap(fd.fd);
  } catch (err) {
    fd.close();
    other.close();
    throw new ShimError("Internal", `Cannot use ${role} FIFO "${path}": ${(err as Error).message}`, { cause: err });
  }
  fd.take();
  return stream;
}

/**
 * Bytes in the pipe or FIFO `fd` reads from that no reader has taken yet (FIONREAD), 0 if it cannot be
 * asked: callers poll these (settle, a console's drain, the stall guard), where one failed look must not throw.
 */
export function unreadOr0(fd: number): number {
  try {
    return unreadBytes(fd);
  } catch {
    return 0;
  }
}

/**
 * A writer on an output FIFO (stdout/stderr). Holds its own never-read reader so writes never fail with
 * EPIPE while containerd is detached; the kernel buffer keeps data for the next reader, then backpressure.
 */
export class OutputFifo {
  /** Writable stream on the FIFO; `end()` it to flush and close the writer. */
  readonly stream: Writable;
  private readonly keepAlive: OwnedFd;

  private constructor(stream: Writable, keepAlive: OwnedFd) {
    this.stream = stream;
    this.keepAlive = keepAlive;
  }

  /** Opens the keep-alive reader first, then the writer (which cannot fail with ENXIO once a reader exists). */
  static open(path: string, log?: Logger): OutputFifo {
    const keepAlive = openNonblocking(path, O_RDONLY, "output", log);
    let fd: OwnedFd;
    try {
      fd = openNonblocking(path, O_WRONLY, "output", log);
    } catch (err) {
      keepAlive.close();
      throw err;
    }
    return new OutputFifo(adopt(fd, keepAlive, fdWriter, "output", path), keepAlive);
  }

  /** Bytes in the FIFO that no reader has taken yet (0 once closed or if it cannot be asked). */
  unread(): number {
    return this.keepAlive.owned ? unreadOr0(this.keepAlive.fd) : 0;
  }

  /** Destroys the writer and drops the keep-alive reader. Idempotent. */
  close(): void {
    this.stream.destroy();
    this.keepAlive.close();
  }
}

/**
 * A reader on the stdin FIFO plus our own keep-alive writer, so the reader sees no EOF when the client's
 * writer closes (a client may detach and re-attach). `closeKeepAlive()` is CloseIO: EOF then arrives once
 * the client's writer is gone too.
 */
export class InputFifo {
  /** Readable stream on the FIFO. */
  readonly stream: Readable;
  private readonly keepAlive: OwnedFd;

  private constructor(stream: Readable, keepAlive: OwnedFd) {
    this.stream = stream;
    this.keepAlive = keepAlive;
  }

  /** Opens the reader first (never waits), then the keep-alive writer (succeeds since a reader exists). */
  static open(path: string, log?: Logger): InputFifo {
    const fd = openNonblocking(path, O_RDONLY, "stdin", log);
    let keepAlive: OwnedFd;
    try {
      keepAlive = openNonblocking(path, O_WRONLY, "stdin", log);
    } catch (err) {
      fd.close();
      throw err;
    }
    return new InputFifo(adopt(fd, keepAlive, fdReader, "stdin", path), keepAlive);
  }

  /** Drops our keep-alive writer (CloseIO). Idempotent. */
  closeKeepAlive(): void {
    this.keepAlive.close();
  }

  /** Destroys the reader and drops the keep-alive writer. Idempotent. */
  close(): void {
    this.closeKeepAlive();
    this.stream.destroy();
  }
}
