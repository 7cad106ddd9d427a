// Watching a container process's writes from the host: /proc/<pid>/io's wchar counts what it wrote, and
// /proc/<pid>/wchan tells whether it sleeps in a pipe write (its stdout is full and nobody reads).
import { constants, openSync, readFileSync } from "node:fs";
import net from "node:net";
import { waitFor } from "./wait.js";

/** Bytes written so far by `pid` (all fds). */
export function wchar(pid: number): number {
  const m = /wchar: (\d+)/.exec(readFileSync(`/proc/${pid}/io`, "utf8"));
  if (!m) throw new Error(`no wchar in /proc/${pid}/io`);
  return Number(m[1]);
}

/** True while `pid` exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}

/**
 * Waits until `pid` is blocked writing to a pipe: it sleeps in a pipe write and wrote nothing over three
 * polls in a row (100 ms apart). Resolves with the bytes it had written by then.
 */
export async function blockedOnPipe(pid: number, timeoutMs = 20_000): Promise<number> {
  let last = -1;
  let still = 0;
  return waitFor(() => {
    const now = wchar(pid);
    const inPipe = /pipe_write|pipe_wait/.test(readFileSync(`/proc/${pid}/wchan`, "utf8"));
    still = now === last && inPipe ? still + 1 : 0;
    last = now;
    return still >= 3 ? now : 0;
  }, { timeoutMs, intervalMs: 100, what: `process ${pid} to block on a full pipe` });
}

/** Waits until `pid` has written `bytes` more than `from`. */
export async function wroteMore(pid: number, from: number, bytes: number, timeoutMs = 20_000): Promise<number> {
  return waitFor(() => { const n = wchar(pid); return n - from >= bytes ? n : 0; },
    { timeoutMs, intervalMs: 50, what: `process ${pid} to write ${bytes} more bytes (from ${from})` });
}

/**
 * Attaches a reader to the FIFO at `path` (like a client re-attaching), reads `bytes` and detaches.
 * Resolves with the bytes read.
 */
export async function drainFifo(path: string, bytes: number, timeoutMs = 20_000): Promise<number> {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const s = new net.Socket({ fd, readable: true, writable: false });
  let got = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${got} of ${bytes} bytes from ${path} in ${timeoutMs} ms`)), timeoutMs);
      s.on("data", (d: Buffer) => {
        got += d.length;
        if (got >= bytes) { clearTimeout(timer); resolve(); }
      });
      s.on("error", (e) => { clearTimeout(timer); reject(e); });
    });
  } finally {
    s.destroy();
  }
  return got;
}

/** Attaches a reader to the FIFO at `path` that takes everything until stop(). */
export function attachReader(path: string): { stop: () => number } {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const s = new net.Socket({ fd, readable: true, writable: false });
  let got = 0;
  s.on("data", (d: Buffer) => { got += d.length; });
  s.on("error", () => undefined);
  return { stop: () => { s.destroy(); return got; } };
}
