/**
 * Checkpoint and restore of a container's init through runc + CRIU (protocol.md §4.3, §7, §8.2).
 * Checkpoint runs `runc checkpoint`; a Create with `checkpoint` set defers `runc restore --detach` to
 * Start, as containerd's runc shim does. When CRIU fails, its dump.log is kept as
 * `<bundle>/criu-dump.log` and its first error line goes into the message.
 */
import { copyFile, mkdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { codeOf, invalidArgument, ShimError } from "../errdefs.js";
import type { Logger } from "../log.js";
import { criuFailure, readPidFile, type Runc } from "../runc/index.js";
import { prepareIO, type IOOptions, type PreparedIO } from "./io.js";
import type { AnyLike, RuntimeOptions } from "./options.js";
import { typeName } from "./options.js";
import type { Proc } from "./process.js";

/** `containerd.runc.v1.CheckpointOptions`, normalized. */
export interface CheckpointOpts {
  exit: boolean;
  openTcp: boolean;
  externalUnixSockets: boolean;
  terminal: boolean;
  fileLocks: boolean;
  emptyNamespaces: string[];
  cgroupsMode: string;
  imagePath: string;
  workPath: string;
  parentPath: string;
}

/** Where a container created from a checkpoint is restored from at Start. */
export interface RestoreSource {
  imagePath: string;
  parentPath: string;
}

/**
 * What checkpoint and restore need of a container (a Container is one). A structural type, so that this
 * module does not import container.ts, which imports it.
 */
export interface CriuTarget {
  readonly id: string;
  readonly bundle: string;
  readonly logFile: string;
  readonly runc: Runc;
  readonly options: RuntimeOptions;
  readonly init: Proc;
  readonly env: { readonly log: Logger };
}

/** Decoder of the CheckpointOptions message, injected so this module stays free of generated code. */
export type CheckpointCodec = (value: Uint8Array) => Partial<Record<keyof CheckpointOpts, unknown>>;

const CHECKPOINT_OPTIONS = "containerd.runc.v1.CheckpointOptions";

/** Parses the request's options Any; absent means defaults (leave running). Other types: InvalidArgument. */
export function parseCheckpointOptions(any: AnyLike | null | undefined, decode: CheckpointCodec): CheckpointOpts {
  const o: Partial<Record<keyof CheckpointOpts, unknown>> = any?.typeUrl ? decodeKnown(any, decode) : {};
  const s = (v: unknown) => (typeof v === "string" ? v : "");
  return {
    exit: o.exit === true,
    openTcp: o.openTcp === true,
    externalUnixSockets: o.externalUnixSockets === true,
    terminal: o.terminal === true,
    fileLocks: o.fileLocks === true,
    emptyNamespaces: Array.isArray(o.emptyNamespaces) ? o.emptyNamespaces.filter((n) => typeof n === "string") : [],
    cgroupsMode: s(o.cgroupsMode),
    imagePath: s(o.imagePath),
    workPath: s(o.workPath),
    parentPath: s(o.parentPath),
  };
}

function decodeKnown(any: AnyLike, decode: CheckpointCodec) {
  if (typeName(any.typeUrl ?? "") !== CHECKPOINT_OPTIONS) {
    throw invalidArgument(`Cannot use checkpoint options of type "${any.typeUrl}": expected ${CHECKPOINT_OPTIONS}`);
  }
  return decode(any.value ?? new Uint8Array());
}

/** `runc checkpoint` of the init of `c` into `imageDir` (the request's path). Allowed when running or paused. */
export async function checkpointTask(c: CriuTarget, imageDir: string, o: CheckpointOpts, signal?: AbortSignal): Promise<void> {
  c.init.require(["running", "paused"], "checkpoint");
  const imagePath = imageDir || o.imagePath || c.options.criuImagePath || "";
  if (imagePath === "") throw invalidArgument(`Cannot checkpoint task "${c.id}": no image path given`);
  // Without an explicit work dir, CRIU works in <bundle>/work/criu-work (containerd's work dir), removed after.
  const explicitWork = o.workPath || c.options.criuWorkPath || "";
  const work = explicitWork || path.join(c.bundle, "work", "criu-work");
  await mkdir(work, { recursive: true });
  try {
    await c.runc.checkpoint(c.id, {
      imagePath,
      workPath: work,
      parentPath: o.parentPath || undefined,
      tcpEstablished: o.openTcp,
      extUnixSk: o.externalUnixSockets,
      shellJob: o.terminal,
      fileLocks: o.fileLocks,
      manageCgroupsMode: o.cgroupsMode || undefined,
      emptyNs: o.emptyNamespaces,
      leaveRunning: !o.exit,
      logFile: c.logFile,
      signal,
    });
  } catch (err) {
    throw await explainCriuFailure(c, "checkpoint", path.join(work, "dump.log"), err);
  } finally {
    if (explicitWork === "") await rm(work, { recursive: true, force: true });
  }
}

/**
 * Start of a container created from a checkpoint: `runc restore --detach` with the container's stdio,
 * then the pid from `init.pid`. `ioOptions` are those of the container's processes. Returns the pid; the
 * caller publishes /tasks/start.
 */
export async function restoreInit(c: CriuTarget, from: RestoreSource, ioOptions: IOOptions, signal?: AbortSignal): Promise<number> {
  const init = c.init;
  const pidFile = path.join(c.bundle, "init.pid");
  let io: PreparedIO | undefined = await prepareIO(init.stdio, ioOptions);
  const workPath = c.options.criuWorkPath || undefined;
  try {
    await c.runc.restore(c.id, {
      imagePath: from.imagePath,
      workPath,
      bundle: c.bundle,
      pidFile,
      consoleSocket: io.consoleSocket,
      noPivot: c.options.noPivotRoot,
      shellJob: init.stdio.terminal,
      stdio: io.runcStdio,
      logFile: c.logFile,
      signal,
    });
    init.io = await io.ready({ signal });
    io = undefined;
    return await readPidFile(pidFile);
  } catch (err) {
    io?.abort();
    throw await explainCriuFailure(c, "restore", path.join(workPath ?? from.imagePath, "restore.log"), err);
  }
}

/**
 * Copies CRIU's log next to the bundle (`criu-dump.log` for checkpoint, as the runc shim does) and
 * rethrows with CRIU's first error line. A CRIU that cannot even start on this kernel is FailedPrecondition.
 */
async function explainCriuFailure(c: CriuTarget, op: string, logPath: string, err: unknown): Promise<ShimError> {
  const kept = path.join(c.bundle, op === "checkpoint" ? "criu-dump.log" : "criu-restore.log");
  const text = await readFile(logPath, "utf8").catch(() => undefined);
  const base = err instanceof Error ? err.message : String(err);
  if (text === undefined) return new ShimError(codeOf(err), `Cannot ${op} task "${c.id}": ${base}`, { cause: err });
  await copyFile(logPath, kept).catch((e: unknown) => c.env.log.warn("cannot keep criu log", { id: c.id, err: e }));
  const f = criuFailure(text);
  const code = f.hostUnsupported ? "FailedPrecondition" : codeOf(err);
  // runc's message names CRIU's log in the work dir, which is gone by now: keep its first line only.
  const runcLine = base.split("\n")[0];
  if (f.firstError === undefined) return new ShimError(code, `Cannot ${op} task "${c.id}": ${runcLine} (log: ${kept})`, { cause: err });
  const why = f.hostUnsupported ? "criu cannot run on this host" : "criu";
  return new ShimError(code, `Cannot ${op} task "${c.id}": ${why}: ${f.firstError} (${runcLine}; log: ${kept})`, { cause: err });
}
