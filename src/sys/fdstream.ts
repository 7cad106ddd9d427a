/**
 * Streams over a pipe or FIFO fd that the stream then owns (destroying or ending it closes the fd).
 *
 * On Node this is `net.Socket({ fd })` (libuv's pipe handle: non-blocking, epoll-driven). Bun's
 * net.Socket adopts no pipe fd (it validates `{ fd }` and then reads nothing), so on Bun the fd is read
 * with `Bun.file(fd).stream()` and written with `Bun.file(fd).writer()`, both on Bun's own epoll loop:
 * a read waits for data, and `flush()` settles only once the kernel took every byte (backpressure when
 * the pipe is full). Neither closes the fd, so these wrappers do.
 *
 * Bun reads and writes through its own dup of the fd. A reader's dup closes once it is cancelled. A writer
 * destroyed while the chunk of one write() is still waiting for room keeps its dup until that chunk is
 * written or the last reader goes (EPIPE), where Node drops what the kernel did not take and closes at
 * once: a FIFO reader that stalls but stays open gets the whole chunk, then EOF, once it reads on
 * (measured on Bun 1.4.5 with a 1 MiB write into a full pipe).
 */
import { closeSync } from "node:fs";
import net from "node:net";
import { Readable, Writable } from "node:stream";
import { setNonblocking } from "./fds.js";
import { RUNTIME } from "./ffi.js";

interface BunSink {
  write(chunk: Uint8Array): number | Promise<number>;
  flush(): number | Promise<number>;
  end(): number | Promise<number>;
}

interface BunApi {
  file(fd: number): { stream(): ReadableStream<Uint8Array>; writer(opts?: { highWaterMark?: number }): BunSink };
}

const HIGH_WATER_MARK = 64 * 1024;

function bun(): BunApi | undefined {
  return RUNTIME === "bun" ? (globalThis as unknown as { Bun: BunApi }).Bun : undefined;
}

/** A readable stream on `fd` (a pipe or FIFO read end); ends at EOF. Owns `fd`. */
export function fdReader(fd: number): Readable {
  const b = bun();
  if (b === undefined) return new net.Socket({ fd, readable: true, writable: false });
  return new BunFdReader(fd, b, true);
}

/**
 * Bun only: a readable stream on a pty master that leaves the fd open when it errors (EIO: no slave), ends
 * or is destroyed; the caller closes it. Used through ptyreader.ts `ptyReader`, which reads the master itself on Node.
 */
export function bunPtyReader(fd: number): Readable {
  const b = bun();
  if (b === undefined) throw new Error("bunPtyReader: not on Bun");
  return new BunFdReader(fd, b, false);
}

/** A writable stream on `fd` (a pipe or FIFO write end). `end()` flushes, then closes `fd`. Owns `fd`. */
export function fdWriter(fd: number): Writable {
  const b = bun();
  if (b === undefined) return new net.Socket({ fd, readable: false, writable: true });
  return new BunFdWriter(fd, b);
}

/** Closes `fd` once; errors (already closed) are ignored, as net.Socket does. */
function closeOnce(state: { fd: number }): void {
  if (state.fd < 0) return;
  const fd = state.fd;
  state.fd = -1;
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

class BunFdReader extends Readable {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly state: { fd: number };
  private reading = false;

  constructor(fd: number, b: BunApi, private readonly owns: boolean) {
    super({ highWaterMark: HIGH_WATER_MARK });
    this.state = { fd };
    setNonblocking(fd, true);
    this.reader = b.file(fd).stream().getReader();
  }

  override _read(): void {
    if (this.reading) return;
    this.reading = true;
    this.reader.read().then(
      ({ done, value }) => {
        this.reading = false;
        if (this.destroyed) return;
        if (done) {
          this.push(null);
          return;
        }
        if (this.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength))) this._read();
      },
      (err: unknown) => {
        this.reading = false;
        this.destroy(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // Bun reads through its own dup of the fd, closed once the reader is cancelled.
    const done = () => {
      if (this.owns) closeOnce(this.state);
      cb(err);
    };
    this.reader.cancel().then(done, done);
  }
}

class BunFdWriter extends Writable {
  private readonly sink: BunSink;
  private readonly state: { fd: number };

  constructor(fd: number, b: BunApi) {
    super({ highWaterMark: HIGH_WATER_MARK });
    this.state = { fd };
    setNonblocking(fd, true);
    this.sink = b.file(fd).writer({ highWaterMark: HIGH_WATER_MARK });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    try {
      void this.sink.write(chunk);
      Promise.resolve(this.sink.flush()).then(() => cb(), (err: unknown) => cb(toError(err)));
    } catch (err) {
      cb(toError(err));
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    try {
      Promise.resolve(this.sink.flush()).then(() => cb(), (err: unknown) => cb(toError(err)));
    } catch (err) {
      cb(toError(err));
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    try {
      void Promise.resolve(this.sink.end()).catch(() => {});
    } catch {
      // the sink already failed
    }
    closeOnce(this.state);
    cb(err);
  }
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
