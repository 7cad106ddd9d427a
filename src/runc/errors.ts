/**
 * The one place that reads runc's words: turns a failed runc call into a `ShimError` with a code.
 * Nothing outside this file branches on runc's message text (contracts.md, style.md R1).
 */
import { ShimError, type Code } from "../errdefs.js";

/** What a failed runc call left behind. */
export interface RuncFailure {
  /** The subcommand, e.g. `create`, `kill`. */
  verb: string;
  /** Exit code, undefined when killed by a signal or not started. */
  exitCode?: number;
  /** Terminating signal name, if any. */
  signal?: string;
  stdout: string;
  stderr: string;
  /** The part of runc's JSON log file written during this call. */
  logText: string;
}

/** A runc call that exited non-zero. Carries runc's output for logs; branch on `code` only. */
export class RuncError extends ShimError {
  override name = "RuncError";
  readonly verb: string;
  readonly exitCode: number | undefined;
  readonly stdout: string;
  readonly stderr: string;
  /** The message runc gave (log line, else output, else exit status), without our prefix. */
  readonly runcMessage: string;

  constructor(code: Code, f: RuncFailure, runcMessage: string) {
    const prefix = `runc ${f.verb} failed: `;
    // runc itself sometimes logs "runc create failed: ..."; do not say it twice.
    super(code, runcMessage.startsWith(prefix) ? runcMessage : prefix + runcMessage);
    this.verb = f.verb;
    this.exitCode = f.exitCode;
    this.stdout = f.stdout;
    this.stderr = f.stderr;
    this.runcMessage = runcMessage;
  }
}

/**
 * Returns the `msg` of the last line with `"level":"error"` in runc's JSON log text (one object a
 * line; lines that are not JSON objects are skipped), or undefined if there is none.
 */
export function lastLogError(logText: string): string | undefined {
  const lines = logText.split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]?.trim();
    if (line === undefined || line === "") continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      continue;
    }
    if (typeof parsed !== "object" || parsed === null) continue;
    const rec = parsed as Record<string, unknown>;
    if (rec["level"] === "error" && typeof rec["msg"] === "string") return rec["msg"];
  }
  return undefined;
}

/** The best message for a failure: the last log error, else stderr, else stdout, else the exit status. */
export function failureMessage(f: RuncFailure): string {
  const fromLog = lastLogError(f.logText);
  if (fromLog !== undefined && fromLog !== "") return fromLog;
  const err = f.stderr.trim();
  if (err !== "") return err;
  const out = f.stdout.trim();
  if (out !== "") return out;
  if (f.exitCode !== undefined) return `exit status ${f.exitCode}`;
  return f.signal !== undefined ? `killed by ${f.signal}` : "unknown failure";
}

// Verbs on which "does not exist" means the container is gone.
const MISSING_VERBS = new Set(["kill", "delete", "state", "ps", "pause", "resume", "update", "events"]);
// Mirrors containerd's checkKillError: a kill of an exited process is NotFound, which callers accept.
const KILL_GONE = /container not running|no such process|process already finished|\besrch\b/i;
const MISSING = /does not exist/i;

/** The error code of a runc failure with message `msg` on subcommand `verb`. */
export function classify(verb: string, msg: string): Code {
  if (verb === "kill" && KILL_GONE.test(msg)) return "NotFound";
  if (MISSING_VERBS.has(verb) && MISSING.test(msg)) return "NotFound";
  return "Unknown";
}

/** Builds the error for a runc call that exited unsuccessfully. */
export function runcError(f: RuncFailure): RuncError {
  const msg = failureMessage(f);
  return new RuncError(classify(f.verb, msg), f, msg);
}

/** The error for a runc call that could not be started at all (e.g. the binary is missing). */
export function spawnError(verb: string, binary: string, cause: unknown): ShimError {
  const detail = cause instanceof Error ? ((cause as NodeJS.ErrnoException).code ?? cause.message) : String(cause);
  return new ShimError("Unknown", `Cannot run "${binary}" for runc ${verb}: ${detail}`, { cause });
}

/** The error for a runc call stopped by its AbortSignal: Canceled, or DeadlineExceeded for a timeout. */
export function abortedError(verb: string, reason: unknown): ShimError {
  const timeout = reason instanceof Error && reason.name === "TimeoutError";
  return new ShimError(timeout ? "DeadlineExceeded" : "Canceled", `runc ${verb} ${timeout ? "timed out" : "canceled"}`, {
    cause: reason,
  });
}

/** What CRIU's own log (dump.log, restore.log) says about a failure. */
export interface CriuFailure {
  /** The first `Error (file:line): text` line, without its prefix. */
  firstError: string | undefined;
  /** True when CRIU failed while probing the kernel (`criu check` fails too): no checkpoint can work here. */
  hostUnsupported: boolean;
}

const CRIU_ERROR = /Error \([^)]*\):\s*(.*)$/;
// CRIU's start-up probe of kernel features; failing it means CRIU is unusable on this kernel.
const CRIU_KERNDAT = /kerndat|Could not initialize kernel features detection/;

/** Reads CRIU's log text: its first error line and whether the host cannot run CRIU at all. */
export function criuFailure(logText: string): CriuFailure {
  let firstError: string | undefined;
  let hostUnsupported = false;
  for (const line of logText.split("\n")) {
    const m = CRIU_ERROR.exec(line);
    if (m === null) continue;
    firstError ??= m[1]?.trim();
    if (CRIU_KERNDAT.test(line)) hostUnsupported = true;
  }
  return { firstError, hostUnsupported };
}
