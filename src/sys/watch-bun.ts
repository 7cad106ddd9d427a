/**
 * Bun only: fd readiness without reading and without a timer (ffi-bun.ts watchReadable/watchEventfd). Bun has
 * no fd watcher that does not read, so a Worker (poll-worker.ts) blocks in poll(2) on every watched fd plus a
 * wake-up eventfd, and posts the ready ones to this thread, which runs the callbacks and re-arms them
 * (level-triggered, like Node's libuv poll handle). The watches live in a shared table (watch-table.ts);
 * adding, re-arming or closing one writes the table and then the wake-up eventfd, so the Worker polls the
 * new set. Nothing wakes either thread while no watched fd changes.
 *
 * - No lost wake-up: a new watch first looks with poll(2), timeout 0, on this thread, so an fd that is already
 *   readable (an eventfd signalled before the watch, a console socket that already has its message) is
 *   reported on the next turn of the loop without waiting for the Worker; the Worker only polls fds that were
 *   not ready, and poll(2) is level-triggered, so readiness between that look and the Worker's poll is seen.
 * - The Worker starts with the first fd that has to be waited for (measured: 10-40 ms on Bun 1.4.5, and about
 *   6-7 MiB private memory while it runs), and ends {@link LINGER_MS} after the last watch closed (unless a
 *   new one came): the table's STOP word is set and it is woken; its wake-up eventfd is closed at its exit. It is unref'd while every watch is, so it never
 *   keeps the process alive on its own.
 */
import { writeSync } from "node:fs";
import { Worker } from "node:worker_threads";
import type { Watch } from "./ffi-types.js";
import { ARMED, FIRED, FREE, GEN_STEP, HIGH, POLLS, STOP, slotEvents, slotFd, slotWord, tableWords } from "./watch-table.js";

/** Watches one process can hold at once (the table is 12 bytes a watch). */
export const CAPACITY = 4096;
/** How long a Worker outlives its last watch. */
export const LINGER_MS = 1000;
const POLLNVAL = 0x20;
const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;

/** The libc calls used here (from ffi-bun.ts's bun:ffi bindings). */
export interface WatchLibc {
  poll(pfd: Uint8Array, nfds: number, timeout: number): number;
  eventfd(initval: number, flags: number): number;
  close(fd: number): number;
}

interface Entry {
  readonly gen: number;
  readonly cb: () => void;
  ref: boolean;
}

/** Counters for test/sys/watch.test.ts: Workers started and ended, their poll(2) returns, messages to this thread. */
export const watchStats = { workers: 0, exited: 0, polls: 0, messages: 0 };

const ONE = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);

/** One Worker and its table, from the first watch that must wait until no watch is left. */
class Poller {
  private readonly t = new Int32Array(new SharedArrayBuffer(4 * tableWords(CAPACITY)));
  private readonly entries = new Map<number, Entry>();
  private readonly free: number[] = [];
  private worker: Worker | undefined;
  private wake = -1;
  private high = 0;
  private restarts = 0;
  private linger: NodeJS.Timeout | undefined;

  constructor(private readonly c: WatchLibc, private readonly onEmpty: (p: Poller) => void) {}

  add(fd: number, events: number, gen: number, cb: () => void): number {
    clearTimeout(this.linger);
    const s = this.free.pop() ?? this.high++;
    if (s >= CAPACITY) throw new Error(`Cannot watch fd ${fd}: ${CAPACITY} watches already`);
    Atomics.store(this.t, slotFd(s), fd);
    Atomics.store(this.t, slotEvents(s), events);
    Atomics.store(this.t, slotWord(s), gen * GEN_STEP + FIRED); // not polled until armed
    Atomics.store(this.t, HIGH, this.high);
    this.entries.set(s, { gen, cb, ref: true });
    this.refresh();
    return s;
  }

  /** Polls slot `s` in the Worker (starting it if needed). */
  arm(s: number): void {
    const e = this.entries.get(s);
    if (e === undefined) return;
    Atomics.store(this.t, slotWord(s), e.gen * GEN_STEP + ARMED);
    this.start();
    this.kick();
  }

  /** Runs slot `s`'s callback if it is still the watch `gen` and `revents` is not POLLNVAL; then re-arms it. */
  deliver(s: number, gen: number, revents: number): void {
    const e = this.entries.get(s);
    if (e === undefined || e.gen !== gen) return;
    if ((revents & POLLNVAL) !== 0) return; // closed under the watch: nothing more will come
    e.cb();
    if (this.entries.get(s) === e) this.arm(s);
  }

  close(s: number, gen: number): void {
    if (this.entries.get(s)?.gen !== gen) return;
    this.entries.delete(s);
    Atomics.store(this.t, slotWord(s), gen * GEN_STEP + FREE);
    this.free.push(s);
    this.kick(); // the Worker lets go of the fd (its poll(2) holds the file open)
    this.refresh();
    if (this.entries.size === 0) {
      // A one-shot timer, not a periodic one: a tty start watches its console socket, then soon after the
      // container's OOM eventfd (cgroup v1), and should not boot a second Worker for it.
      this.linger = setTimeout(() => {
        this.stop();
        this.onEmpty(this);
      }, LINGER_MS).unref();
    }
  }

  unref(s: number, gen: number): void {
    const e = this.entries.get(s);
    if (e?.gen !== gen) return;
    e.ref = false;
    this.refresh();
  }

  /** The Worker keeps the process alive only while a watch does. */
  private refresh(): void {
    if (this.worker === undefined) return;
    if ([...this.entries.values()].some((e) => e.ref)) this.worker.ref();
    else this.worker.unref();
  }

  private start(): void {
    if (this.worker !== undefined) return;
    const wake = this.c.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake < 0) throw new Error("Cannot watch: eventfd for the poll Worker failed");
    this.wake = wake;
    const worker = new Worker(new URL("./poll-worker.js", import.meta.url), { workerData: { table: this.t.buffer, wake } });
    this.worker = worker;
    watchStats.workers++;
    worker.on("message", (fired: number[]) => {
      watchStats.messages++;
      for (let i = 0; i < fired.length; i += 3) {
        const s = fired[i]!;
        const word = fired[i + 1]!;
        this.deliver(s, Math.floor(word / GEN_STEP), fired[i + 2]!);
      }
    });
    worker.on("error", (err) => process.emitWarning(`fd watch Worker failed: ${String(err)}`));
    worker.once("exit", () => {
      watchStats.polls += Atomics.exchange(this.t, POLLS, 0);
      watchStats.exited++;
      this.worker = undefined;
      this.c.close(wake);
      // Ended without being stopped (it failed): a new one takes over the armed slots, once.
      if (Atomics.load(this.t, STOP) === 0 && this.entries.size > 0 && this.restarts++ === 0) this.start();
      if (watchStats.exited === watchStats.workers) {
        const waiters = exitWaiters;
        exitWaiters = [];
        for (const w of waiters) w();
      }
    });
    this.refresh();
  }

  private kick(): void {
    if (this.worker !== undefined) writeSync(this.wake, ONE);
  }

  private stop(): void {
    Atomics.store(this.t, STOP, 1);
    this.kick();
  }

  /** poll(2) returns in the running Worker so far. */
  polls(): number {
    return Atomics.load(this.t, POLLS);
  }
}

let current: Poller | undefined;
let nextGen = 1;
let exitWaiters: (() => void)[] = [];

/** Resolves once no Worker runs (at once if none does): after the last watch closed, the Worker ends. */
export function noWorker(): Promise<void> {
  if (watchStats.exited === watchStats.workers) return Promise.resolve();
  return new Promise((resolve) => exitWaiters.push(resolve));
}

/** poll(2) returns so far, of ended Workers and the running one (tests count these across an idle window). */
export function workerPolls(): number {
  return watchStats.polls + (current?.polls() ?? 0);
}

/**
 * Calls `cb` whenever poll(2) reports `events` (or an error/hang-up) on `fd`, until the watch is closed; an fd
 * closed under the watch (POLLNVAL) ends it without a callback.
 */
export function watchFd(c: WatchLibc, fd: number, events: number, cb: () => void): Watch {
  const poller = (current ??= new Poller(c, (p) => {
    if (current === p) current = undefined;
  }));
  const gen = nextGen;
  nextGen = (nextGen % 0x1fffffff) + 1;
  const s = poller.add(fd, events, gen, cb);
  // The first look is here: an fd already ready needs no Worker.
  const pfd = new Uint8Array(8);
  const view = new DataView(pfd.buffer);
  view.setInt32(0, fd, true);
  view.setInt16(4, events, true);
  const revents = c.poll(pfd, 1, 0) > 0 ? view.getInt16(6, true) : 0;
  if (revents !== 0) setImmediate(() => poller.deliver(s, gen, revents));
  else poller.arm(s);
  return {
    close: () => poller.close(s, gen),
    unref: () => poller.unref(s, gen),
  };
}
