/**
 * Bun only: an eventfd's signals through Bun's own fd reader (`Bun.file(fd).stream()`, on Bun's epoll loop),
 * for {@link Natives.watchEventfd}. No Worker and no timer: the poll Worker (watch.ts) costs its JS heap,
 * about 4-6 MiB private per daemon, and on cgroup v1 an OOM watch is held for as long as the daemon holds a
 * container, so it ran for the daemon's whole life. Measured before/after in bench/RESULTS.md ("OOM watch
 * without the poll Worker").
 *
 * Two differences from the Worker's watch, both part of the contract in ffi-types.ts:
 * - Bun reads the counter before JS gets the chunk, so a synchronous read of the eventfd (a flush at exit)
 *   can find it already taken. oom.ts counts on a second eventfd that nothing watches.
 * - Bun's file reader cannot be unref'd: the watch keeps the process alive until it is closed. The daemon
 *   ends with an explicit exit, and an OOM watch is closed with its container.
 * Bun reads through its own dup of `fd` and closes that dup once the reader is cancelled (close()).
 */
import type { Watch } from "../ffi-types.js";

interface BunFile {
  file(fd: number): { stream(): ReadableStream<Uint8Array> };
}

/** Calls `cb` with the sum of the counters read in each chunk (never 0) until the watch is closed. */
export function streamEventfd(fd: number, cb: (count: bigint) => void): Watch {
  const reader = (globalThis as unknown as { Bun: BunFile }).Bun.file(fd).stream().getReader();
  let closed = false;
  let carry = new Uint8Array(0); // a counter split across chunks (an eventfd read is 8 bytes; kept safe)
  const pump = (): void => {
    reader.read().then(({ done, value }) => {
      if (closed || done) return;
      const bytes = carry.length === 0 ? value : concat(carry, value);
      const whole = bytes.length - (bytes.length % 8);
      const view = new DataView(bytes.buffer, bytes.byteOffset, whole);
      let n = 0n;
      for (let i = 0; i < whole; i += 8) n += view.getBigUint64(i, true);
      carry = bytes.slice(whole);
      if (n > 0n) cb(n);
      if (!closed) pump();
    }, () => {
      // The fd went bad under the reader (closed by its owner first): nothing more will come.
    });
  };
  pump();
  return {
    close() {
      if (closed) return;
      closed = true;
      reader.cancel().catch(() => {});
    },
    unref() {
      // Bun's file reader has no unref (see above).
    },
  };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
