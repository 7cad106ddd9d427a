/**
 * Spawning one runc process with node:child_process: environment without NOTIFY_SOCKET, stdio handed over
 * or captured, registry own/disown around its life, SIGKILL on abort. Never throws for runc's failures;
 * the caller turns the outcome into errors. (execa did this before; loading it cost the daemon ~70 ms of
 * startup and ~12 MB RSS, see bench/RESULTS.md.)
 */
import { spawn, type StdioOptions } from "node:child_process";
import { open, stat } from "node:fs/promises";
import type { ChildRegistry, RuncStdio } from "./types.js";

/** One runc invocation. */
export interface SpawnRequest {
  /** The subcommand, for errors. */
  verb: string;
  /** Everything after the binary name. */
  argv: string[];
  /** runc's `--log` file; its size before the call marks where this call's lines start. */
  logFile?: string;
  /** Hand these fds to runc as its stdio (no capture). Without it stdout and stderr are captured. */
  stdio?: RuncStdio;
  /** An fd of ours that runc gets as fd 3. */
  extraFd?: number;
  /** Written to runc's stdin, which is then closed. */
  input?: string;
  signal?: AbortSignal;
}

/** What happened to a runc process. */
export interface SpawnOutcome {
  canceled: boolean;
  /** Set when the process could not be started. */
  spawnFailure?: unknown;
  exitCode?: number;
  signal?: string;
  stdout: string;
  stderr: string;
  /** Size of the log file before the call (0 if it did not exist). */
  logOffset: number;
}

/** Our environment minus NOTIFY_SOCKET, which must not reach runc (it would talk to systemd itself). */
export function runcEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out = { ...env };
  delete out["NOTIFY_SOCKET"];
  return out;
}

async function sizeOf(path: string | undefined): Promise<number> {
  if (path === undefined) return 0;
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

const MAX_LOG_READ = 64 * 1024;

/**
 * Returns what was appended to `path` since it had `offset` bytes (the whole file if it shrank),
 * at most its last 64 KiB; "" if it cannot be read. A shared log may hold older calls' errors,
 * which must not be reported as this call's.
 */
export async function readLogSince(path: string, offset: number): Promise<string> {
  try {
    const fh = await open(path, "r");
    try {
      const size = (await fh.stat()).size;
      let from = size < offset ? 0 : offset;
      if (size - from > MAX_LOG_READ) from = size - MAX_LOG_READ;
      const buf = Buffer.alloc(size - from);
      const { bytesRead } = await fh.read(buf, 0, buf.length, from);
      return buf.subarray(0, bytesRead).toString("utf8");
    } finally {
      await fh.close();
    }
  } catch {
    return "";
  }
}

/**
 * Runs runc to completion. The pid is own()ed synchronously after spawn and disown()ed after exit.
 * Resolves once runc has exited and its captured stdout/stderr are closed (like execa and Go's cmd.Wait).
 */
export async function spawnRunc(binary: string, req: SpawnRequest, registry?: ChildRegistry): Promise<SpawnOutcome> {
  const logOffset = await sizeOf(req.logFile);
  type Slot = number | "ignore" | "pipe";
  const std: [Slot, Slot, Slot] = req.stdio ? [...req.stdio] : [req.input === undefined ? "ignore" : "pipe", "pipe", "pipe"];
  const stdio: Slot[] = req.extraFd === undefined ? std : [...std, req.extraFd];
  const out: SpawnOutcome = { canceled: false, stdout: "", stderr: "", logOffset };
  if (req.signal?.aborted === true) return { ...out, canceled: true };
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(binary, req.argv, { stdio: stdio as StdioOptions, env: runcEnv() });
  } catch (err) {
    return { ...out, spawnFailure: err };
  }
  const pid = child.pid;
  if (pid !== undefined) registry?.own(pid);
  const onAbort = (): void => {
    out.canceled = true;
    child.kill("SIGKILL");
  };
  try {
    return await new Promise<SpawnOutcome>((resolve) => {
      child.stdout?.setEncoding("utf8").on("data", (d: string) => (out.stdout += d));
      child.stderr?.setEncoding("utf8").on("data", (d: string) => (out.stderr += d));
      if (child.stdin) {
        child.stdin.on("error", () => undefined); // EPIPE when runc exits without reading: its exit status tells
        child.stdin.end(req.input ?? "");
      }
      child.once("error", (err) => {
        if (pid === undefined) resolve({ ...out, spawnFailure: err });
      });
      child.once("close", (code, sig) => {
        if (code !== null) out.exitCode = code;
        if (sig !== null) out.signal = sig;
        if (pid === undefined && out.spawnFailure === undefined) out.spawnFailure = new Error(`Cannot spawn "${binary}"`);
        resolve(out);
      });
      if (pid !== undefined) req.signal?.addEventListener("abort", onAbort, { once: true });
    });
  } finally {
    req.signal?.removeEventListener("abort", onAbort);
    if (pid !== undefined) registry?.disown(pid);
  }
}
