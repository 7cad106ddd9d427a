/**
 * eventfd(2) for cgroup v1 OOM notifications, read without blocking the event loop. The fd is created
 * non-blocking and watched through the native seam (ffi.ts: a libuv poll handle on Node, Bun's own fd
 * reader on Bun); each signal reads, so resets, the counter. On Bun that read happens before the callback,
 * so a synchronous {@link EventFd.read} of a watched eventfd may find a signal already taken but not yet
 * delivered: a flush reads an eventfd nobody watches (oom.ts).
 */
import { closeSync, writeSync } from "node:fs";
import { ShimError } from "../errdefs.js";
import { readEventfdCounter } from "./counter.js";
import { natives, type Watch } from "./ffi.js";
import { E, errnoName, lastErrno } from "./libc.js";

const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;

/** A non-blocking, close-on-exec eventfd. One owner; {@link EventFd.close} is idempotent. */
export class EventFd {
  private poll: Watch | undefined;
  private closed = false;

  private constructor(readonly fd: number) {}

  /** `eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)`. Throws ShimError naming the errno on failure. */
  static create(): EventFd {
    const fd = natives().eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) {
      const errno = lastErrno();
      throw new ShimError(errno === E.EMFILE || errno === E.ENFILE ? "ResourceExhausted" : "Internal", `Cannot eventfd: ${errnoName(errno)}`);
    }
    return new EventFd(fd);
  }

  /** Reads and resets the counter without blocking: 0n when nothing was signalled (or after close). */
  read(): bigint {
    return this.closed ? 0n : readEventfdCounter(this.fd, Buffer.alloc(8));
  }

  /** Adds `n` to the counter (tests, and waking a watcher). */
  write(n: bigint): void {
    const buf = Buffer.alloc(8);
    buf.writeBigUInt64LE(n, 0);
    writeSync(this.fd, buf);
  }

  /**
   * Calls `cb` with the counter each time it becomes non-zero (it is read, so reset, before `cb`).
   * The watch is unref'd where the runtime allows it: on Node it never keeps the process alive, on Bun it
   * does until {@link EventFd.close}.
   * Only one callback at a time.
   */
  onSignal(cb: (count: bigint) => void): void {
    if (this.closed) throw new ShimError("FailedPrecondition", `Cannot poll eventfd ${this.fd}: closed`);
    this.poll?.close();
    this.poll = natives().watchEventfd(this.fd, cb);
    this.poll.unref();
  }

  /** Stops polling and closes the fd. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.poll?.close();
    this.poll = undefined;
    closeSync(this.fd);
  }
}
