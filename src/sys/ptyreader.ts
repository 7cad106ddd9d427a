/**
 * A readable stream on a pty master that batches the master's small reads and never closes the fd.
 *
 * A pty master gives at most 4095 bytes per read(2) (the line discipline's buffer) and holds about 12 KiB
 * in all; a slave writing more waits for the reader. Read through libuv (tty.ReadStream), every 4 KiB cost
 * an event-loop turn, a JS callback, a chunk through each stream and one write into the output FIFO. Here,
 * once the master is readable, it is read with non-blocking `readSync` until EAGAIN or until {@link BATCH}
 * bytes, and that is pushed as one chunk: each read makes room, so a writer on another CPU refills the pty
 * while the loop reads on.
 *
 * Readiness comes from the native seam's level-triggered watch (koffi's libuv poll handle) on the master
 * itself (no other libuv handle uses the fd). The watch runs only while the stream wants data and the
 * master had none; it is closed before the callback reads, so a reader paused by backpressure is not woken.
 * EIO (no slave open) or EOF ends the stream (`end`), after everything read before it; the fd stays open,
 * and its owner closes it after destroying the stream. On Bun this is src/sys fdstream's Bun reader (Bun's
 * own epoll reader on a dup of the fd), which also leaves the fd open.
 */
import { readSync } from "node:fs";
import { Readable } from "node:stream";
import { bunPtyReader } from "./fdstream.js";
import { natives, RUNTIME, type Watch } from "./ffi.js";
import { setNonblocking } from "./fds.js";

/** Most bytes pushed as one chunk (16 reads of a pty master; the default size of a pipe's buffer). */
export const BATCH = 64 * 1024;
/** A batch smaller than this is copied out, and the batch buffer is used again. */
const COPY_BELOW = 16 * 1024;

/** A readable stream on the pty master `fd` (see the file comment). Does not own `fd`. */
export function ptyReader(fd: number): Readable {
  return RUNTIME === "bun" ? bunPtyReader(fd) : new MasterReader(fd);
}

class MasterReader extends Readable {
  private buf = Buffer.allocUnsafe(BATCH);
  private watch: Watch | undefined;

  constructor(private readonly fd: number) {
    super({ highWaterMark: BATCH });
    setNonblocking(fd, true);
  }

  override _read(): void {
    if (this.watch !== undefined) return; // already waiting for the master
    const { n, end, err } = this.fill();
    if (n > 0) {
      let chunk: Buffer;
      if (n < COPY_BELOW) chunk = Buffer.from(this.buf.subarray(0, n));
      else {
        chunk = this.buf.subarray(0, n);
        this.buf = Buffer.allocUnsafe(BATCH);
      }
      this.push(chunk);
    }
    if (err !== undefined) this.destroy(err);
    else if (end) this.push(null);
    else if (n === 0) this.wait();
    // else: Readable calls _read again when it wants more.
  }

  /** Reads until EAGAIN, EIO/EOF or a full batch. */
  private fill(): { n: number; end: boolean; err?: Error } {
    let n = 0;
    while (n < BATCH) {
      let r: number;
      try {
        r = readSync(this.fd, this.buf, n, BATCH - n, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "EAGAIN") return { n, end: false };
        if (code === "EIO") return { n, end: true };
        return { n, end: false, err: e as Error };
      }
      if (r === 0) return { n, end: true };
      n += r;
    }
    return { n, end: false };
  }

  private wait(): void {
    this.watch = natives().watchReadable(this.fd, () => {
      this.watch?.close();
      this.watch = undefined;
      if (!this.destroyed) this._read();
    });
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.watch?.close();
    this.watch = undefined;
    cb(err);
  }
}
