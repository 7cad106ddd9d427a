/**
 * Structured logging in containerd's logfmt style. No globals: a root logger is made once by the shim
 * and handed down with `child()`. Writes never block and never grow memory: a line that the sink
 * cannot take at once (EAGAIN on a full FIFO, EPIPE with no reader) is dropped and counted.
 */
import { writeSync } from "node:fs";

export type Level = "trace" | "debug" | "info" | "warn" | "error";
const RANK: Record<Level, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 };

export type Fields = Record<string, unknown>;

/** Where formatted lines go. */
export interface Sink {
  write(line: string): void;
}

/** A sink on a file descriptor (the bundle's `log` FIFO opened O_NONBLOCK, or stderr). */
export class FdSink implements Sink {
  dropped = 0;
  constructor(private readonly fd: number) {}
  write(line: string): void {
    try {
      writeSync(this.fd, line);
    } catch {
      this.dropped++;
    }
  }
}

/** A sink that keeps nothing. */
export const nullSink: Sink = { write() {} };

/** A sink that records lines in memory (tests). */
export class MemorySink implements Sink {
  readonly lines: string[] = [];
  write(line: string): void {
    if (this.lines.length < 10_000) this.lines.push(line);
  }
}

function quote(v: unknown): string {
  let s: string;
  if (v instanceof Error) s = v.message;
  else if (typeof v === "string") s = v;
  else if (typeof v === "bigint" || typeof v === "number" || typeof v === "boolean") return String(v);
  else s = JSON.stringify(v) ?? String(v);
  return /^[A-Za-z0-9_.:/@+-]+$/.test(s) ? s : JSON.stringify(s);
}

/** A leveled logger with fixed fields. Messages are constant; variable data goes into fields. */
export class Logger {
  constructor(
    private readonly sink: Sink = nullSink,
    private readonly level: Level = "info",
    private readonly fields: Fields = {},
  ) {}

  /** A logger that adds `fields` to every line. */
  child(fields: Fields): Logger {
    return new Logger(this.sink, this.level, { ...this.fields, ...fields });
  }

  enabled(level: Level): boolean {
    return RANK[level] >= RANK[this.level];
  }

  trace(msg: string, fields?: Fields): void {
    this.log("trace", msg, fields);
  }
  debug(msg: string, fields?: Fields): void {
    this.log("debug", msg, fields);
  }
  info(msg: string, fields?: Fields): void {
    this.log("info", msg, fields);
  }
  warn(msg: string, fields?: Fields): void {
    this.log("warn", msg, fields);
  }
  error(msg: string, fields?: Fields): void {
    this.log("error", msg, fields);
  }

  private log(level: Level, msg: string, fields?: Fields): void {
    if (!this.enabled(level)) return;
    let line = `time="${new Date().toISOString()}" level=${level} msg=${JSON.stringify(msg)}`;
    for (const [k, v] of Object.entries({ ...this.fields, ...fields })) {
      if (v !== undefined) line += ` ${k}=${quote(v)}`;
    }
    this.sink.write(line + "\n");
  }
}
