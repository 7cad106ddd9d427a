/**
 * Bun only: the body of the fd-watching Worker of watch-bun.ts. It blocks in poll(2) (no timeout) on the armed
 * slots of the shared table plus the wake-up eventfd, and posts the slots found ready to the main thread. A
 * ready slot is moved from armed to fired here (compare-and-swap on its word), so it is not polled again until
 * the main thread has run its callback and re-armed it: level-triggered, without spinning on an fd nobody has
 * read yet. It never reads a watched fd. Table layout: see watch-bun.ts.
 */
import { createRequire } from "node:module";
import { parentPort, workerData } from "node:worker_threads";
import { ARMED, FIRED, HIGH, POLLS, STATE_MASK, STOP, WAKE_EVENTS, slotFd, slotEvents, slotWord } from "./watch-table.js";

interface Ffi {
  dlopen(path: string, symbols: Record<string, { args: string[]; returns: string }>): {
    symbols: Record<string, (...args: unknown[]) => number | bigint>;
  };
}

const { table: shared, wake } = workerData as { table: SharedArrayBuffer; wake: number };
const t = new Int32Array(shared);
const ffi = createRequire(import.meta.url)("bun:ffi") as Ffi;
const { symbols: c } = ffi.dlopen("libc.so.6", {
  poll: { args: ["ptr", "u64", "i32"], returns: "i32" },
  read: { args: ["i32", "ptr", "u64"], returns: "i64" },
});
const counter = new Uint8Array(8);
let pfd = new Uint8Array(8 * 64); // struct pollfd { int fd; short events; short revents; }[]
let view = new DataView(pfd.buffer);
/** The slot and the word it was armed with, per pollfd entry after the wake-up fd. */
const slots: number[] = [];
const words: number[] = [];

while (Atomics.load(t, STOP) === 0) {
  const high = Atomics.load(t, HIGH);
  if (pfd.length < 8 * (high + 1)) {
    pfd = new Uint8Array(8 * (high + 1));
    view = new DataView(pfd.buffer);
  }
  view.setInt32(0, wake, true);
  view.setInt16(4, WAKE_EVENTS, true);
  view.setInt16(6, 0, true);
  slots.length = 0;
  words.length = 0;
  for (let s = 0; s < high; s++) {
    const word = Atomics.load(t, slotWord(s));
    if ((word & STATE_MASK) !== ARMED) continue;
    const at = 8 * (slots.length + 1);
    view.setInt32(at, Atomics.load(t, slotFd(s)), true);
    view.setInt16(at + 4, Atomics.load(t, slotEvents(s)), true);
    view.setInt16(at + 6, 0, true);
    slots.push(s);
    words.push(word);
  }
  const n = Number(c.poll!(pfd, slots.length + 1, -1));
  Atomics.add(t, POLLS, 1);
  if (n <= 0) continue; // EINTR
  if (view.getInt16(6, true) !== 0) c.read!(wake, counter, 8); // drained: the table changed, or stop
  const fired: number[] = [];
  for (let i = 0; i < slots.length; i++) {
    const revents = view.getInt16(8 * (i + 1) + 6, true);
    if (revents === 0) continue;
    const s = slots[i]!;
    const word = words[i]!;
    // Closed or re-armed meanwhile: the main thread changed the word, and this report is stale.
    if (Atomics.compareExchange(t, slotWord(s), word, (word & ~STATE_MASK) | FIRED) !== word) continue;
    fired.push(s, word, revents);
  }
  if (fired.length > 0) parentPort!.postMessage(fired);
}
