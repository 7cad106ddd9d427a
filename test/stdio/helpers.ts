/** Test helpers for the stdio suites: temp dirs, FIFOs, fd counting and waiting with deadlines. */
import { execFileSync, type ChildProcess } from "node:child_process";
import { constants, mkdtempSync, openSync, readdirSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";

/** A temp dir removed after the test. */
export function tmpDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "stdio-test-"));
  // A logger a test started may still be writing its last file as the test ends: retry on ENOTEMPTY.
  t.after(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));
  return dir;
}

/** Creates a FIFO at `dir/name` and returns its path. */
export function mkfifo(dir: string, name: string): string {
  const p = join(dir, name);
  execFileSync("mkfifo", [p]);
  return p;
}

/** Number of open fds of this process. */
export function fdCount(): number {
  return readdirSync("/proc/self/fd").length;
}

/** Resolves when `cond()` holds, rejects after `timeoutMs`; checks on every macrotask turn (no fixed sleeps). */
export async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Rejects if `p` does not settle within `timeoutMs`. */
export async function deadline<T>(p: Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Timed out waiting for ${what}`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits for a child's exit code (or 128+signal). */
export function exited(child: ChildProcess): Promise<number> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code, sig) => resolve(code ?? 128 + (sig === null ? 0 : 9))));
}

/** A client reader on a FIFO (opened O_NONBLOCK, as containerd's fifo package does). */
export function fifoReader(path: string): net.Socket {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  return new net.Socket({ fd, readable: true, writable: false });
}

/** A client writer on a FIFO; a reader must already be open (ours). */
export function fifoWriter(path: string): net.Socket {
  const fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  return new net.Socket({ fd, readable: false, writable: true });
}

/** Collects everything a stream yields until it ends. */
export async function collect(s: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Throws a clear error when a required program is missing. */
export function requireProgram(name: string): void {
  try {
    execFileSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" });
  } catch {
    throw new Error(`This test needs "${name}" on PATH`);
  }
}
