/**
 * Stream plumbing shared by the pipe and console copies: several sources into one destination with
 * backpressure, ending the destination once every source has finished.
 */
import { finished, type Readable, type Writable } from "node:stream";
import type { Logger } from "../log.js";

/**
 * Copies `expected` readable sources into `dest` (stdout and stderr may share one FIFO or file). Each
 * source is piped with `end: false`, so a full destination pauses every source; `dest` is ended when the
 * last source has ended, errored or closed. `done` resolves true once `dest` has flushed everything
 * ("finish"), false if it failed or was destroyed first; it never rejects.
 */
export class Fanin {
  /** Settles when the destination has finished (true) or failed (false). */
  readonly done: Promise<boolean>;
  private pending: number;
  private readonly sources: Readable[] = [];

  constructor(
    private readonly dest: Writable,
    expected: number,
    private readonly log?: Logger,
  ) {
    this.pending = expected;
    this.done = new Promise<boolean>((resolve) => {
      finished(dest, { readable: false }, (err) => {
        if (err !== undefined && err !== null) {
          this.log?.warn("stdio copy failed", { error: err });
          // A destination that cannot take data: stop the sources so the container sees EPIPE, not a hang.
          for (const s of this.sources) s.destroy();
          resolve(false);
        } else resolve(true);
      });
    });
    if (expected === 0) dest.end();
  }

  /** Starts copying `src` into the destination. */
  add(src: Readable): void {
    this.sources.push(src);
    src.on("error", (err: Error) => this.log?.debug("stdio source closed with error", { error: err }));
    src.pipe(this.dest, { end: false });
    finished(src, { writable: false }, () => {
      src.unpipe(this.dest);
      this.pending--;
      if (this.pending === 0 && !this.dest.destroyed) this.dest.end();
    });
  }
}

/** Resolves true when `p` settles true before `timeoutMs`, false otherwise. The timer never outlives the wait. */
export async function withTimeout(p: Promise<boolean>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, timeoutMs));
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const STALL_POLL_MS = 50;

/**
 * Waits for the output copies `copies` (true = flushed) for at most `timeoutMs`, but gives up (false) as
 * soon as one of `readerGone` (per output FIFO, StallGuard.readerGone) holds: that reader is gone
 * (containerd restarted, CRI closed its side at the exit, ctr detached), the rest can never be written, and
 * waiting out the whole timeout would only overrun the caller's own deadline (containerd gives Delete 10 s).
 * A reader that keeps taking data, however slowly, gets the whole timeout. Never rejects.
 */
export async function drainCopies(copies: Promise<boolean>, readerGone: (() => boolean)[], opts: { timeoutMs: number }): Promise<boolean> {
  let poll: NodeJS.Timeout | undefined;
  const gone = new Promise<boolean>((resolve) => {
    if (readerGone.length === 0) return;
    const check = (): void => {
      if (readerGone.some((f) => f())) resolve(false);
    };
    poll = setInterval(check, STALL_POLL_MS);
    check();
  });
  try {
    return await withTimeout(Promise.race([copies, gone]), opts.timeoutMs);
  } finally {
    clearInterval(poll);
  }
}

const CONSUMED_POLL_MS = 5;
/**
 * Checks in a row (5 ms apart) that find nothing pending before an exit is reported without EOF: Bun's
 * fd reader may hold a chunk out of sight for a moment, so one empty look is not enough.
 */
const QUIET_POLLS = 20;
/** A FIFO reader that took no byte for this long is not reading (a detached client): drain and settle stop waiting for it. */
export const READER_STALL_MS = 500;

/**
 * Waits, after a process exited, until `pending()` (bytes it wrote that the output's reader has not taken:
 * in the pipe, in the shim, in the FIFO) is 0: at once once `copied` settled (the pipes reached EOF), else
 * on QUIET_POLLS checks in a row (an orphan may hold the pipe open: no EOF, but nothing left to copy). Gives up
 * (false) once the count stopped changing for `stallMs` (nobody reads: a detached client) or at
 * `timeoutMs`. `copied` undefined: the copies already ended, so the first 0 ends the wait. Never rejects.
 */
export async function waitSettled(
  pending: () => number,
  copied: Promise<unknown> | undefined,
  opts: { timeoutMs: number; stallMs: number },
): Promise<boolean> {
  const deadline = Date.now() + opts.timeoutMs;
  // Known at once when there is nothing to wait for: a first look at 0 then returns true even past the deadline.
  let ended = copied === undefined;
  const end = copied?.then(
    () => (ended = true),
    () => (ended = true),
  );
  let last = pending();
  let lastChange = Date.now();
  let zeroes = 0;
  for (;;) {
    zeroes = last === 0 ? zeroes + 1 : 0;
    if (last === 0 && (ended || zeroes >= QUIET_POLLS)) return true;
    const now = Date.now();
    if (now >= deadline || now - lastChange >= opts.stallMs) return false;
    let timer: NodeJS.Timeout | undefined;
    const tick = new Promise((resolve) => (timer = setTimeout(resolve, CONSUMED_POLL_MS)));
    await (ended || end === undefined ? tick : Promise.race([end, tick]));
    clearTimeout(timer);
    const n = pending();
    if (n !== last) lastChange = Date.now();
    last = n;
  }
}

/**
 * Waits until `unread()` reaches 0 (the FIFO's reader took everything written), until the count stops
 * falling for `stallMs` (nobody is reading: a detached client), or until `timeoutMs`, whichever is first.
 * Resolves true only in the first case. Never rejects. {@link waitSettled} with the copies already ended:
 * one poll loop for both.
 */
export function waitConsumed(unread: () => number, opts: { timeoutMs: number; stallMs: number }): Promise<boolean> {
  return waitSettled(unread, undefined, opts);
}
