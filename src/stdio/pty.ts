/**
 * Writing stdin into a pty master (console.ts).
 */
import { writeSync } from "node:fs";
import { Writable } from "node:stream";

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
