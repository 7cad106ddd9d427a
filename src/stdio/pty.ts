/**
 * Low-level pieces of the pty copy (console.ts): keeping the master's fd away from tty.ReadStream's
 * close-on-error, and a non-blocking writer into the master.
 */
import { writeSync } from "node:fs";
import { Writable } from "node:stream";
import type tty from "node:tty";

/** The parts of Node's internal TTY handle we use. */
export interface TtyHandle {
  readStop(): number;
  close(cb?: () => void): void;
}

/**
 * Makes `reader.destroy()` leave the fd open: the stream's handle is stopped, detached (Node's socket
 * destroy then skips closing it) and given to `take`, whose owner closes it. Relies on net.Socket's
 * `_handle`/`_destroy`, stable since Node 12 and checked by test/stdio/console.test.ts.
 */
export function keepHandle(reader: tty.ReadStream, take: (h: TtyHandle) => void): void {
  const rs = reader as unknown as {
    _handle: (TtyHandle & { onread?: unknown }) | null;
    _destroy(err: Error | null, cb: (err: Error | null) => void): void;
  };
  const destroy = rs._destroy.bind(reader);
  rs._destroy = (err, cb) => {
    const h = rs._handle;
    if (h !== null) {
      h.readStop();
      h.onread = () => {};
      rs._handle = null;
      take(h);
    }
    destroy(err, cb);
  };
}

/** Writes into the non-blocking master; EAGAIN is retried on a backoff timer (1 ms doubling to 64 ms). */
export class MasterWriter extends Writable {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly fd: number,
    private readonly gone: () => boolean,
  ) {
    super({ highWaterMark: 16 * 1024 });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.attempt(chunk, 0, 1, cb);
  }

  private attempt(chunk: Buffer, off: number, delay: number, cb: (err?: Error | null) => void): void {
    while (off < chunk.length) {
      if (this.gone()) return cb();
      try {
        off += writeSync(this.fd, chunk, off, chunk.length - off);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN") return cb(); // EIO: no slave; input is dropped
        this.timer = setTimeout(() => this.attempt(chunk, off, Math.min(delay * 2, 64), cb), delay);
        return;
      }
    }
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    clearTimeout(this.timer);
    cb(err);
  }
}
