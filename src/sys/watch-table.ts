/**
 * The table shared (SharedArrayBuffer, Int32) by watch-bun.ts and its Worker (poll-worker.ts): a header, then
 * one slot of three words per watch: fd, poll events, and a word packing a generation (upper bits, new for each
 * watch that takes the slot) with a state (lower 2 bits). Only the main thread frees or arms a slot; only the
 * Worker moves armed to fired, by compare-and-swap on the whole word, so a report about a slot that was closed
 * or reused meanwhile fails the swap, or fails the main thread's generation check.
 */
/** Header: set to 1 to end the Worker (then it is woken). */
export const STOP = 0;
/** Header: slots in use are below this index (the Worker scans up to it). */
export const HIGH = 1;
/** Header: poll(2) returns in the Worker, counted for tests (idle must not wake it). */
export const POLLS = 2;
export const SLOT0 = 4;
export const SLOT_WORDS = 3;

export const FREE = 0;
export const ARMED = 1;
export const FIRED = 2;
export const STATE_MASK = 3;
export const GEN_STEP = 4;
/** POLLIN: the wake-up eventfd's events. */
export const WAKE_EVENTS = 0x1;

export const slotFd = (s: number): number => SLOT0 + SLOT_WORDS * s;
export const slotEvents = (s: number): number => SLOT0 + SLOT_WORDS * s + 1;
export const slotWord = (s: number): number => SLOT0 + SLOT_WORDS * s + 2;
/** Int32 words of a table with room for `slots` watches. */
export const tableWords = (slots: number): number => SLOT0 + SLOT_WORDS * slots;
