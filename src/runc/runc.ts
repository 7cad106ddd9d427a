/**
 * The runc client: one method per OCI runtime subcommand (protocol.md §8). Command lines come from
 * `args.ts`, output parsing from `parse.ts`, and failure mapping from `errors.ts`.
 */
import { open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { internal } from "../errdefs.js";
import type { Logger } from "../log.js";
import * as A from "./args.js";
import { readLogSince, spawnRunc, type SpawnRequest } from "./spawn.js";
import { abortedError, runcError, spawnError } from "./errors.js";
import { parseObject, parsePs, parseState, parseStats, parseVersion } from "./parse.js";
import type { ChildRegistry, RuncState, RuncStdio, RuncVersion } from "./types.js";

/** How to run runc. */
export interface RuncOptions {
  /** Binary path or name on PATH; default `runc`. */
  binary?: string;
  /** `--root`: `<options.root or /run/containerd/runc>/<namespace>`. */
  root: string;
  systemdCgroup?: boolean;
  /** CRIU binary (`--criu`), passed only to checkpoint and restore. */
  criu?: string;
  /** Told about every runc pid right after spawn and after its exit. */
  registry?: ChildRegistry;
  log?: Logger;
}

/** Options of every container call: the per-call runc log file, and cancellation (kills runc). */
export interface CallOptions {
  logFile: string;
  signal?: AbortSignal;
}

/** `runc create` options. `stdio` defaults to all "ignore" (the container then gets /dev/null). */
export interface CreateOptions extends CallOptions, A.CreateFlags {
  stdio?: RuncStdio;
}

/** `runc exec --detach` options. */
export interface ExecOptions extends CallOptions {
  pidFile: string;
  consoleSocket?: string;
  stdio?: RuncStdio;
}

/** `runc checkpoint` options; `statusFd` is our fd that becomes runc's fd 3 (`--status-fd 3`). */
export interface CheckpointOptions extends CallOptions, Omit<A.CheckpointFlags, "statusFd3"> {
  statusFd?: number;
}

/** `runc restore --detach` options. */
export interface RestoreOptions extends CallOptions, A.RestoreFlags {
  stdio?: RuncStdio;
}

const IGNORE_ALL: RuncStdio = ["ignore", "ignore", "ignore"];
/** Counter for the names of `runc exec --process` files. */
let processFiles = 0;

/**
 * Runs runc. Every failure is a ShimError (`RuncError` for a non-zero exit, with runc's message from
 * the call's log file); a call aborted through its signal kills runc and throws Canceled or
 * DeadlineExceeded. runc's environment is ours minus NOTIFY_SOCKET.
 */
export class Runc {
  private readonly binary: string;

  constructor(private readonly opts: RuncOptions) {
    this.binary = opts.binary ?? "runc";
  }

  /** `runc create`: returns once the container's init waits for `start`; read the pid from `pidFile`. */
  async create(id: string, o: CreateOptions): Promise<void> {
    await this.call(A.createArgs(id, o), o, { stdio: o.stdio ?? IGNORE_ALL });
  }

  /** `runc start <id>`. */
  async start(id: string, o: CallOptions): Promise<void> {
    await this.call(A.startArgs(id), o);
  }

  /**
   * `runc exec --detach`: `spec` (an OCI process object) goes to a 0600 temp file `runc-process-*`
   * under $XDG_RUNTIME_DIR (else the temp dir), removed afterwards. Read the pid from `pidFile`.
   */
  async exec(id: string, spec: object, o: ExecOptions): Promise<void> {
    o.signal?.throwIfAborted();
    // Unique per process and call; "wx" refuses a leftover of the same name. (node:crypto would add ~9 ms to daemon boot.)
    const file = join(process.env["XDG_RUNTIME_DIR"] || tmpdir(), `runc-process-${process.pid}-${Date.now().toString(36)}-${++processFiles}.json`);
    const cannotWrite = (err: unknown) => internal(`Cannot write runc's process file "${file}": ${(err as Error).message}`, { cause: err });
    const fh = await open(file, "wx", 0o600).catch((err: unknown) => { throw cannotWrite(err); });
    try {
      try {
        await fh.writeFile(JSON.stringify(spec));
      } catch (err) {
        throw cannotWrite(err);
      } finally {
        await fh.close();
      }
      const args = A.execArgs(id, { processFile: file, pidFile: o.pidFile, consoleSocket: o.consoleSocket });
      await this.call(args, o, { stdio: o.stdio ?? IGNORE_ALL });
    } finally {
      await rm(file, { force: true });
    }
  }

  /** `runc kill [--all] <id> <sig>`. An exited or missing container is NotFound. */
  async kill(id: string, sig: number, o: CallOptions & { all?: boolean }): Promise<void> {
    await this.call(A.killArgs(id, sig, o.all), o);
  }

  /** `runc delete [--force] <id>`. A missing container is NotFound. */
  async delete(id: string, o: CallOptions & { force?: boolean }): Promise<void> {
    await this.call(A.deleteArgs(id, o.force), o);
  }

  /** `runc state <id>`, parsed. */
  async state(id: string, o: CallOptions): Promise<RuncState> {
    return parseState(await this.call(A.stateArgs(id), o));
  }

  /** `runc ps --format json <id>`: the container's pids (empty if none). */
  async ps(id: string, o: CallOptions): Promise<number[]> {
    return parsePs(await this.call(A.psArgs(id), o));
  }

  /** `runc pause <id>`. */
  async pause(id: string, o: CallOptions): Promise<void> {
    await this.call(A.pauseArgs(id), o);
  }

  /** `runc resume <id>`. */
  async resume(id: string, o: CallOptions): Promise<void> {
    await this.call(A.resumeArgs(id), o);
  }

  /** `runc update --resources=- <id>` with `resources` (OCI LinuxResources) as JSON on stdin. */
  async update(id: string, resources: object, o: CallOptions): Promise<void> {
    await this.call(A.updateArgs(id), o, { input: JSON.stringify(resources) });
  }

  /** `runc events --stats <id>`: the `data` object of the stats event (runc's Stats shape, §8.3). */
  async stats(id: string, o: CallOptions): Promise<Record<string, unknown>> {
    return parseStats(await this.call(A.statsArgs(id), o));
  }

  /** `runc checkpoint`. */
  async checkpoint(id: string, o: CheckpointOptions): Promise<void> {
    const { statusFd, ...flags } = o;
    const args = A.checkpointArgs(id, { ...flags, statusFd3: statusFd !== undefined });
    await this.call(args, o, statusFd === undefined ? {} : { extraFd: statusFd });
  }

  /** `runc restore --detach ... -no-subreaper`; read the pid from `pidFile`. */
  async restore(id: string, o: RestoreOptions): Promise<void> {
    await this.call(A.restoreArgs(id, o), o, { stdio: o.stdio ?? IGNORE_ALL });
  }

  /** `runc features`: the OCI runtime features document (no global flags). */
  async features(o: { signal?: AbortSignal } = {}): Promise<Record<string, unknown>> {
    return parseObject("features", await this.run({ verb: "features", argv: ["features"], signal: o.signal }));
  }

  /** `runc --version`, parsed (no global flags). */
  async version(o: { signal?: AbortSignal } = {}): Promise<RuncVersion> {
    return parseVersion(await this.run({ verb: "--version", argv: ["--version"], signal: o.signal }));
  }

  private call(args: string[], o: CallOptions, extra: Partial<SpawnRequest> = {}): Promise<string> {
    // Only checkpoint/restore take --criu, so other runtimes (crun) never see it on ordinary calls.
    const criu = args[0] === "checkpoint" || args[0] === "restore" ? this.opts.criu : undefined;
    const g = A.globalArgs({ root: this.opts.root, logFile: o.logFile, systemdCgroup: this.opts.systemdCgroup, criu });
    return this.run({ verb: args[0] ?? "", argv: [...g, ...args], logFile: o.logFile, signal: o.signal, ...extra });
  }

  /** Runs one runc process to completion; returns its stdout (empty when stdio was handed over). */
  private async run(req: SpawnRequest): Promise<string> {
    if (req.signal?.aborted === true) throw abortedError(req.verb, req.signal.reason);
    this.opts.log?.debug("runc call", { argv: req.argv.join(" ") });
    const r = await spawnRunc(this.binary, req, this.opts.registry);
    if (r.canceled) throw abortedError(req.verb, req.signal?.reason);
    if (r.spawnFailure !== undefined) throw spawnError(req.verb, this.binary, r.spawnFailure);
    if (r.exitCode === 0) return r.stdout;
    const logText = req.logFile === undefined ? "" : await readLogSince(req.logFile, r.logOffset);
    throw runcError({ verb: req.verb, exitCode: r.exitCode, signal: r.signal, stdout: r.stdout, stderr: r.stderr, logText });
  }
}
