/**
 * Spawning one runc process with execa: environment without NOTIFY_SOCKET, stdio handed over or
 * captured, registry own/disown around its life, SIGKILL on abort. Never throws for runc's failures;
 * the caller turns the outcome into errors.
 */
import { open, stat } from "node:fs/promises";
import { execa, type Options } from "execa";
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

function text(v: unknown): string {
  return typeof v === "string" ? v : "";
}

/** Runs runc to completion. The pid is own()ed synchronously after spawn and disown()ed after exit. */
export async function spawnRunc(binary: string, req: SpawnRequest, registry?: ChildRegistry): Promise<SpawnOutcome> {
  const logOffset = await sizeOf(req.logFile);
  type Slot = number | "ignore" | "pipe";
  const std: [Slot, Slot, Slot] = req.stdio ? [...req.stdio] : [req.input === undefined ? "ignore" : "pipe", "pipe", "pipe"];
  const stdio: [Slot, Slot, Slot, ...Slot[]] = req.extraFd === undefined ? std : [...std, req.extraFd];
  const child = execa(binary, req.argv, {
    // execa passes any integer to child_process.spawn as a native fd; its types only list 0-9.
    stdio: stdio as unknown as Options["stdio"],
    env: runcEnv(),
    extendEnv: false,
    reject: false,
    stripFinalNewline: false,
    killSignal: "SIGKILL",
    ...(req.signal ? { cancelSignal: req.signal } : {}),
  });
  const pid = child.pid;
  if (pid !== undefined) registry?.own(pid);
  try {
    if (req.input !== undefined) child.stdin?.end(req.input);
    const r = await child;
    const out: SpawnOutcome = { canceled: r.isCanceled, stdout: text(r.stdout), stderr: text(r.stderr), logOffset };
    if (r.exitCode !== undefined) out.exitCode = r.exitCode;
    if (r.signal !== undefined) out.signal = r.signal;
    if (pid === undefined || (r.exitCode === undefined && r.signal === undefined && !r.isCanceled)) {
      out.spawnFailure = r.cause ?? new Error(r.message);
    }
    return out;
  } finally {
    if (pid !== undefined) registry?.disown(pid);
  }
}
