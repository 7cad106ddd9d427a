/**
 * Writing stdin into a pty master (console.ts): non-blocking writes that wait for room without a timer.
 */
import { writeSync } from "node:fs";
import { Writable } from "node:stream";
import { setNonblocking, waitWritable } from "../sys/index.js";

/**
 * Writes into the non-blocking master. On EAGAIN (the slave's input queue is full: the process is not
 * reading) it waits for the master to report room (src/sys `waitWritable`, an fd watch on a dup of the
 * master), then writes on. Destroying the writer ends that wait and closes the dup. EIO (no slave open)
 * drops the input, as does a watch that cannot be set up.
 */
export class MasterWriter extends Writable {
  private abort: AbortController | undefined;

  constructor(
    private readonly fd: number,
    private readonly gone: () => boolean,
  ) {
    super({ highWaterMark: 16 * 1024 });
    setNonblocking(fd, true); // a blocking write would stall the whole event loop
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.attempt(chunk, 0, cb);
  }

  private attempt(chunk: Buffer, off: number, cb: (err?: Error | null) => void): void {
    while (off < chunk.length) {
      if (this.gone() || this.destroyed) return cb();
      try {
        off += writeSync(this.fd, chunk, off, chunk.length - off);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN") return cb(); // EIO: no slave; input is dropped
        const abort = (this.abort = new AbortController());
        let waiting: Promise<void>;
        try {
          waiting = waitWritable(this.fd, { signal: abort.signal });
        } catch {
          return cb(); // no watch (fd limit): the input is dropped, as on EIO
        }
        waiting.then(
          () => this.attempt(chunk, off, cb),
          () => cb(), // destroyed meanwhile
        );
        return;
      }
    }
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.abort?.abort();
    cb(err);
  }
}
