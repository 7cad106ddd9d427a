/**
 * eventfd(2) for cgroup v1 OOM notifications, read without blocking the event loop.
 *
 * Node cannot wrap an eventfd in a stream: `net.Socket({ fd })` refuses it (libuv guesses its handle
 * type as UNKNOWN), and `fs.read`/`createReadStream` would run a blocking read on the threadpool (or
 * fail with EAGAIN on a non-blocking fd). So the fd is created non-blocking and watched with koffi's
 * libuv poll handle (`koffi.node.poll`, level-triggered, on the main loop); when readable, one
 * `fs.readSync` of 8 bytes returns and resets the counter, or throws EAGAIN when another read got it.
 */
import { closeSync, readSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { ShimError } from "../errdefs.js";
import { E, errnoName, lastErrno } from "./libc.js";

type Koffi = typeof import("koffi");
type PollHandle = ReturnType<Koffi["node"]["poll"]>;

const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;

/** Loaded on first use; immutable once set. */
let loaded: { koffi: Koffi; eventfd: (initval: number, flags: number) => number } | undefined;

function lib(): NonNullable<typeof loaded> {
  if (loaded) return loaded;
  const koffi = createRequire(import.meta.url)("koffi") as Koffi;
  const eventfd = koffi.load("libc.so.6").func("int eventfd(unsigned int initval, int flags)") as (i: number, f: number) => number;
  loaded = { koffi, eventfd };
  return loaded;
}

/** A non-blocking, close-on-exec eventfd. One owner; {@link EventFd.close} is idempotent. */
export class EventFd {
  private poll: PollHandle | undefined;
  private closed = false;

  private constructor(readonly fd: number) {}

  /** `eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)`. Throws ShimError naming the errno on failure. */
  static create(): EventFd {
    const fd = Number(lib().eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (fd < 0) {
      const errno = lastErrno();
      throw new ShimError(errno === E.EMFILE || errno === E.ENFILE ? "ResourceExhausted" : "Internal", `Cannot eventfd: ${errnoName(errno)}`);
    }
    return new EventFd(fd);
  }

  /** Reads and resets the counter without blocking: 0n when nothing was signalled (or after close). */
  read(): bigint {
    if (this.closed) return 0n;
    const buf = Buffer.alloc(8);
    try {
      return readSync(this.fd, buf, 0, 8, null) === 8 ? buf.readBigUInt64LE(0) : 0n;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EAGAIN") return 0n;
      throw err;
    }
  }

  /** Adds `n` to the counter (tests, and waking a watcher). */
  write(n: bigint): void {
    const buf = Buffer.alloc(8);
    buf.writeBigUInt64LE(n, 0);
    writeSync(this.fd, buf);
  }

  /**
   * Calls `cb` with the counter each time it becomes non-zero (it is read, so reset, before `cb`).
   * The poll handle is unref'd: a watcher never keeps the process alive. Only one callback at a time.
   */
  onSignal(cb: (count: bigint) => void): void {
    if (this.closed) throw new ShimError("FailedPrecondition", `Cannot poll eventfd ${this.fd}: closed`);
    this.poll?.close();
    this.poll = lib().koffi.node.poll(this.fd, { readable: true }, () => {
      const n = this.read();
      if (n > 0n) cb(n);
    });
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
