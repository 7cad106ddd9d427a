/**
 * Output into a FIFO that nobody reads (ctr run -d after ctr exited, CRI while containerd is down). Without
 * this, the copy's backpressure reaches the container: once its pipe and the FIFO are full it sleeps in
 * write(2) until a reader comes back. {@link StallGuard} sits between the copy and the FIFO's writer: while
 * the FIFO takes data, even slowly, it passes backpressure on unchanged; once the FIFO took nothing for
 * `stallMs`, it keeps accepting the container's output, holds the newest `holdBytes` of it and drops older
 * bytes (counted). When the FIFO takes data again the held bytes go first, then live output, in order.
 *
 * Why the newest: after a restart containerd (CRI) reopens the FIFOs and copies what it reads into the
 * container's log, stamped with the time it reads it. Keeping the newest bytes makes that log continuous up
 * to "now" (held output runs straight into live output), with the one gap at the stall's start, right
 * after the bytes the FIFO itself still holds (its kernel buffer keeps the first output of the outage).
 */
import { finished, Writable } from "node:stream";
import type { Logger } from "../log.js";

/** A FIFO that took no byte for this long has no reader: the shim starts holding and dropping output. */
export const OUTPUT_STALL_MS = 2000;
/** Bytes of output held per stalled FIFO (the newest); older ones are dropped. */
export const OUTPUT_HOLD_BYTES = 1 << 20;
/** Writes into the FIFO are cut to this size, so a slow reader's progress shows as completed writes. */
const PIECE = 16 * 1024;
/** Bytes queued here (not yet handed to the FIFO's writer) before the copy is paused, while not stalled. */
const QUEUE_HWM = 64 * 1024;

/** Test overrides for {@link OUTPUT_STALL_MS} and {@link OUTPUT_HOLD_BYTES}. */
export interface StallOptions {
  stallMs?: number;
  holdBytes?: number;
}

export interface StallGuardOptions extends StallOptions {
  /** What the FIFO carries, for the log lines: "stdout", "stderr" or "stdout+stderr". */
  stream: string;
  id: string;
  log?: Logger;
}

/**
 * A writable that forwards everything to `dest` (the FIFO's writer) in order, see the file comment.
 * `unread()` is the FIFO's unread byte count; its fall means a reader took data. Ending it ends `dest`
 * once everything held was handed over; it finishes when `dest` did (never while no reader takes the rest).
 */
export class StallGuard extends Writable {
  private readonly queue: Buffer[] = [];
  private queued = 0;
  /** A write held back (backpressure towards the container) until the queue has room again. */
  private pendingCb: (() => void) | undefined;
  private finalCb: ((err?: Error | null) => void) | undefined;
  private ending = false;
  private dropping = false;
  private dropped = 0;
  private stalledAt = 0;
  private lastProgress = Date.now();
  private lastUnread = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly stallMs: number;
  private readonly holdBytes: number;

  constructor(
    private readonly dest: Writable,
    private readonly unread: () => number,
    private readonly opts: StallGuardOptions,
  ) {
    super();
    this.stallMs = opts.stallMs ?? OUTPUT_STALL_MS;
    this.holdBytes = opts.holdBytes ?? OUTPUT_HOLD_BYTES;
    dest.on("drain", () => {
      this.progress();
      this.pump();
    });
    dest.on("error", (err: Error) => this.destroy(err));
    dest.once("close", () => {
      if (!this.ending) this.destroy();
    });
  }

  /**
   * The FIFO has no reader: output for it is pending (held here or in its writer) and it took nothing for
   * `stallMs`. Also true once the copy ended with output left over (the guard then no longer drops).
   */
  readerGone(): boolean {
    return this.pending() && !this.destroyed && Date.now() - this.lastProgress >= this.stallMs;
  }

  /** Output accepted here that the FIFO's kernel buffer has not taken yet (queued here or in its writer). */
  get bufferedBytes(): number {
    return this.writableLength + this.queued + this.dest.writableLength;
  }

  /** Bytes dropped so far in the current stall (0 while a reader takes data). */
  get droppedBytes(): number {
    return this.dropped;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.queue.push(chunk);
    this.queued += chunk.length;
    this.arm();
    this.pump();
    if (this.dropping) {
      this.trim();
      cb();
    } else if (this.queued <= QUEUE_HWM) cb();
    else this.pendingCb = cb;
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.finalCb = cb;
    this.pump();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.stopTimer();
    this.queue.length = 0;
    this.queued = 0;
    this.pendingCb = undefined;
    this.dest.destroy();
    cb(err);
  }

  /** Hands queued bytes to `dest` while it takes them; releases a held write; ends `dest` when asked and empty. */
  private pump(): void {
    while (this.queue.length > 0 && !this.dest.writableNeedDrain && !this.dest.destroyed) {
      const head = this.queue[0] as Buffer;
      let piece = head;
      if (head.length > PIECE) {
        piece = head.subarray(0, PIECE);
        this.queue[0] = head.subarray(PIECE);
      } else this.queue.shift();
      this.queued -= piece.length;
      this.dest.write(piece, (err) => {
        if (err === undefined || err === null) this.progress();
      });
    }
    if (this.pendingCb !== undefined && (this.dropping || this.queued <= QUEUE_HWM)) {
      const cb = this.pendingCb;
      this.pendingCb = undefined;
      cb();
    }
    if (this.finalCb !== undefined && this.queue.length === 0 && !this.ending) {
      const cb = this.finalCb;
      this.finalCb = undefined;
      this.ending = true;
      finished(this.dest, { readable: false }, (err) => {
        this.stopTimer();
        cb(err ?? null);
      });
      this.dest.end();
    }
  }

  /** The FIFO took data: a stall (if any) is over. */
  private progress(): void {
    this.lastProgress = Date.now();
    if (!this.dropping) return;
    this.dropping = false;
    this.opts.log?.warn("stdio reader is back, output resumes", {
      id: this.opts.id,
      stream: this.opts.stream,
      dropped_bytes: this.dropped,
      stalled_ms: this.lastProgress - this.stalledAt,
    });
    this.dropped = 0;
  }

  /** Drops the oldest queued bytes beyond the hold limit. */
  private trim(): void {
    while (this.queued > this.holdBytes) {
      const head = this.queue[0] as Buffer;
      const excess = this.queued - this.holdBytes;
      const n = Math.min(excess, head.length);
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
      this.queued -= n;
      this.dropped += n;
    }
  }

  private pending(): boolean {
    return this.queue.length > 0 || this.dest.writableLength > 0;
  }

  /** Starts watching for a stall while there is output the FIFO has not taken. */
  private arm(): void {
    if (this.timer !== undefined) return;
    this.lastProgress = Date.now();
    this.lastUnread = this.unread();
    const every = Math.max(10, Math.min(100, Math.floor(this.stallMs / 4)));
    this.timer = setInterval(() => this.tick(), every);
    this.timer.unref();
  }

  private tick(): void {
    const u = this.unread();
    if (u < this.lastUnread) this.progress();
    this.lastUnread = u;
    if (!this.pending()) return this.stopTimer();
    if (this.dropping || this.ending || Date.now() - this.lastProgress < this.stallMs) return;
    this.dropping = true;
    this.stalledAt = Date.now();
    this.opts.log?.warn("stdio reader stalled, holding the newest output and dropping older", {
      id: this.opts.id,
      stream: this.opts.stream,
      stalled_ms: this.stalledAt - this.lastProgress,
      hold_bytes: this.holdBytes,
    });
    this.trim();
    this.pump();
  }

  private stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
