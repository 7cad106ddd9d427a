/**
 * The `start` action (shared/protocol.md §1.4, §1.5, §2.4, §2.6): group, bind the socket, spawn the
 * daemon with the listening socket on fd 3, place it, print the address. Nothing but the answer may
 * reach stdout/stderr on success (containerd reads them combined), and no process that outlives `start`
 * may hold containerd's pipes.
 */
import { jsonAnswer, MAX_VERSION_ENV, probeTaskVersion } from "./version-probe.js";
import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { SOCKET_PATH_LIMIT, socketAddress, socketDir, socketPath } from "../socket/address.js";
import type { Grouping, ShimConfig } from "../config/config.js";
import { daemonArgs, type Flags } from "../invocation/flags.js";
import { nodeBootEnv } from "../packaging/nodeenv.js";
import { openLogFifo } from "../diagnostics/logfifo.js";
import type { StartInput } from "../config/options.js";
import { PACKAGED } from "../packaging/packaged.js";
import { adjustOomScore, joinCgroup } from "./placement.js";
import { bindOrJoin } from "../socket/join.js";
import { listenerFd, removeSocket } from "../socket/socket.js";
import { readStdin } from "../invocation/stdin.js";

/** The launcher the daemon is started with (dist/src/shim/manager/start.js -> bin/). */
export const BIN_SCRIPT = fileURLToPath(new URL("../../../../bin/containerd-shim-ts-v2", import.meta.url));

/**
 * Node flags for the daemon only. `--lite-mode` (no optimizing compiler) measured on Node 20: idle RSS
 * 54 MB instead of 64 MB, 61 MB instead of 85 MB after a burst of 10k RPCs, at about 1.5x the CPU per
 * RPC; `--max-semi-space-size=1` alone saved 1 MB idle. Overridden by {@link DAEMON_NODE_FLAGS_ENV}.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ["--lite-mode"];

/** Space-separated Node flags for the daemon, replacing {@link DAEMON_NODE_FLAGS} when set (may be empty). */
export const DAEMON_NODE_FLAGS_ENV = "SHIM_TS_DAEMON_NODE_FLAGS";

/** The Node flags the daemon is started with: the environment's, else the config file's, else the defaults. */
export function daemonNodeFlags(env: NodeJS.ProcessEnv, configured?: readonly string[]): string[] {
  const fromEnv = env[DAEMON_NODE_FLAGS_ENV];
  if (fromEnv === undefined) return [...(configured ?? DAEMON_NODE_FLAGS)];
  return fromEnv.split(/\s+/).filter((f) => f !== "");
}

const GROUP_LABELS = ["io.containerd.runc.v2.group", "io.kubernetes.cri.sandbox-id"];

/** The names config.ts reads, repeated so that `start` loads it only when there is a file to read. */
export const START_CONFIG_NAMES = {
  defaultPath: "/etc/containerd-shim-ts/config.toml",
  env: ["SHIM_TS_CONFIG", "SHIM_TS_GROUPING"],
  daemonLogLevelEnv: "SHIM_TS_DAEMON_LOG_LEVEL",
} as const;

/**
 * The shim config for `start` (src/shim/config/config.ts), loaded (about 2.5 ms of modules) only when a file or
 * an override exists. A file it cannot use gives the defaults and the reason: failing `start` would show
 * containerd a bare exit status, while Create refuses the same file with InvalidArgument naming it.
 */
export async function loadStartConfig(env: NodeJS.ProcessEnv, optionsConfigPath: string | undefined,
  defaultPath: string = START_CONFIG_NAMES.defaultPath): Promise<{ config: ShimConfig; error?: string }> {
  if (!optionsConfigPath && START_CONFIG_NAMES.env.every((name) => !env[name]) && !existsSync(defaultPath)) {
    return { config: { grouping: "pod", runtimeOptions: {} } };
  }
  return (await import("../config/config.js")).startConfig(env, optionsConfigPath);
}

/**
 * The grouping id: with "namespace" grouping one for the whole namespace; else the first group annotation
 * in `<bundle>/config.json`, else the task id.
 */
export function groupingId(bundle: string, id: string, grouping: Grouping = "pod"): string {
  // "" never equals a task id, and join(address, ns, "") is the namespace's own key.
  if (grouping === "namespace") return "";
  let spec: unknown;
  try {
    spec = JSON.parse(readFileSync(path.join(bundle, "config.json"), "utf8"));
  } catch {
    return id; // absent for shim-sandboxer sandboxes (protocol.md §11 item 3), or unreadable
  }
  const annotations = (spec as { annotations?: unknown } | null)?.annotations;
  if (typeof annotations !== "object" || annotations === null) return id;
  for (const label of GROUP_LABELS) {
    const value = (annotations as Record<string, unknown>)[label];
    if (typeof value === "string" && value !== "") return value;
  }
  return id;
}

/** Writes `<bundle>/address` atomically: the exact address, no newline (1.6 reads it raw). */
export function writeAddressFile(bundle: string, address: string): void {
  const tmp = path.join(bundle, ".address.tmp");
  try {
    writeFileSync(tmp, address, { mode: 0o644 });
    renameSync(tmp, path.join(bundle, "address"));
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new Error(`Cannot write "${path.join(bundle, "address")}": ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The answer: a BootstrapResult protobuf for bootstrap input (2.3+); else JSON version 3 for containerd
 * 2.0-2.2; else the plain address, which every containerd accepts (1.6 understands nothing else).
 */
async function answer(address: string, bootstrap: boolean, version: 2 | 3): Promise<Uint8Array> {
  if (!bootstrap) return Buffer.from(version === 3 ? jsonAnswer(3, address) : address, "utf8");
  const { containerd } = await import("../../gen/bootstrap.js");
  const result = containerd.runtime.bootstrap.v1.BootstrapResult.create({ version, address, protocol: "ttrpc" });
  return containerd.runtime.bootstrap.v1.BootstrapResult.encode(result).finish();
}

function writeAll(fd: number, data: Uint8Array): void {
  for (let off = 0; off < data.length; ) off += writeSync(fd, data, off, data.length - off);
}

const O_CLOEXEC = 0o2000000;

/**
 * Closes fds above 2 that this process inherited without close-on-exec (Node's own fds all have it).
 * Otherwise the daemon would inherit them too, and one of them could be a pipe containerd waits on.
 */
export function closeInheritedFds(keep: readonly number[] = []): number[] {
  const closed: number[] = [];
  let fds: string[];
  try {
    fds = readdirSync("/proc/self/fd");
  } catch {
    return closed;
  }
  for (const name of fds) {
    const fd = Number(name);
    if (!Number.isInteger(fd) || fd <= 2 || keep.includes(fd)) continue;
    try {
      const flags = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"));
      if (flags?.[1] === undefined || (Number.parseInt(flags[1], 8) & O_CLOEXEC) !== 0) continue;
      closeSync(fd);
      closed.push(fd);
    } catch {
      // the fd of the directory listing itself, or already gone
    }
  }
  return closed;
}

/**
 * The arguments the daemon is spawned with, after process.execPath: under Node, the Node flags and the
 * launcher; in the Node single executable (process.execPath is the shim itself), the Node flags as
 * `--node-options=...` (the SEA is built with execArgvExtension "cli", see scripts/package.ts) and the
 * daemon's own arguments; in the Bun single executable (process.execPath is the shim too), the daemon's
 * arguments only: the Node flags (`--lite-mode` and the like) have no Bun meaning and are dropped, and a
 * compiled Bun file would take any leading argument as the shim's own.
 */
export function daemonCommand(nodeFlags: readonly string[], args: readonly string[],
  packaged: "node" | "bun" | undefined = PACKAGED?.engine): string[] {
  if (packaged === undefined) return [...nodeFlags, BIN_SCRIPT, ...args];
  if (packaged === "bun") return [...args];
  return nodeFlags.length === 0 ? [...args] : [`--node-options=${nodeFlags.join(" ")}`, ...args];
}

function spawnDaemon(args: string[], cwd: string, fd: number, env: NodeJS.ProcessEnv, nodeFlags: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, daemonCommand(nodeFlags, args), {
      cwd,
      env,
      detached: true,
      stdio: ["ignore", "ignore", "ignore", fd],
    });
    child.once("error", (err) => reject(new Error(`Cannot spawn the shim daemon: ${err.message}`, { cause: err })));
    child.once("spawn", () => {
      child.unref();
      if (child.pid === undefined) reject(new Error("Cannot spawn the shim daemon: no pid"));
      else resolve(child.pid);
    });
  });
}

/**
 * Runs `start` in `bundle` (containerd's cwd). Returns the bytes to print; the caller prints them and
 * exits 0. Throws (after undoing what it did) on failure.
 */
export async function runStart(flags: Flags, bundle: string, env: NodeJS.ProcessEnv): Promise<Uint8Array> {
  if (flags.id === "") throw new Error("Cannot start: -id is required");
  if (flags.namespace === "") throw new Error("Cannot start: -namespace is required");
  // Generated code costs ~13 ms to load: only pay for it when stdin has something to decode.
  const stdin = await readStdin();
  const options = stdin.length > 0 ? await import("../config/options.js") : undefined;
  const input: StartInput = options ? options.decodeStartInput(stdin, flags.id, flags.namespace) : {};
  const shimOpts = options?.shimOptions(input.options);
  const { config, error: configError } = await loadStartConfig(env, shimOpts?.configPath);
  const debug = flags.debug || input.bootstrap?.debug === true;
  const { log } = openLogFifo(bundle, config.logLevel ?? (debug ? "debug" : "info"), { id: flags.id, namespace: flags.namespace });
  if (configError !== undefined) log.warn("cannot use the shim config file, starting with defaults", { error: configError });
  const group = groupingId(bundle, flags.id, config.grouping);
  const address = socketAddress(flags.address, flags.namespace, group, socketDir(input.bootstrap?.socketDir, env));
  const sockPath = socketPath(address);
  if (Buffer.byteLength(sockPath) > SOCKET_PATH_LIMIT) {
    throw new Error(`Cannot create socket "${sockPath}": path longer than ${SOCKET_PATH_LIMIT} bytes`);
  }
  mkdirSync(path.dirname(sockPath), { recursive: true, mode: 0o700 });
  const bound = await bindOrJoin(sockPath, flags.id, () => log.debug("the shim serving this group is shutting down", { address }));
  if (bound === "joined") {
    log.debug("reusing the shim serving this group", { address });
    writeAddressFile(bundle, address);
    return await answer(address, input.bootstrap !== undefined, 2);
  }
  // A new daemon: ask containerd's version while it spawns (version 3 on 2.x, see version-probe.ts).
  const version = input.bootstrap !== undefined && env[MAX_VERSION_ENV] !== "2"
    ? Promise.resolve<2 | 3>(3)
    : probeTaskVersion(flags.publishBinary, env);
  let pid: number | undefined;
  try {
    const daemonEnv = nodeBootEnv(env);
    if (input.bootstrap?.ttrpcAddress) daemonEnv["TTRPC_ADDRESS"] = input.bootstrap.ttrpcAddress;
    if (config.logLevel !== undefined) daemonEnv[START_CONFIG_NAMES.daemonLogLevelEnv] = config.logLevel;
    else delete daemonEnv[START_CONFIG_NAMES.daemonLogLevelEnv];
    closeInheritedFds([listenerFd(bound)]);
    const nodeFlags = daemonNodeFlags(env, config.runtimeFlags);
    pid = await spawnDaemon(daemonArgs(flags, sockPath, debug), bundle, listenerFd(bound), daemonEnv, nodeFlags);
    const shimCgroup = shimOpts?.shimCgroup ?? "";
    if (shimCgroup !== "") {
      for (const err of joinCgroup(pid, shimCgroup)) log.warn("cannot move the shim into its cgroup", { error: err });
    }
    const oomErr = adjustOomScore(pid);
    if (oomErr !== undefined) log.debug("cannot adjust the shim's oom score", { error: oomErr });
    writeAddressFile(bundle, address);
    log.debug("shim daemon started", { pid, address });
    return await answer(address, input.bootstrap !== undefined, await version);
  } catch (err) {
    if (pid !== undefined) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    removeSocket(sockPath);
    throw err;
  }
}

/** The `start` entry point: prints the answer (no newline) and exits 0, or prints the error and exits 1. */
export async function start(flags: Flags): Promise<void> {
  let out: Uint8Array;
  try {
    out = await runStart(flags, flags.bundle || process.cwd(), process.env);
  } catch (err) {
    writeAll(2, Buffer.from(`${err instanceof Error ? err.message : String(err)}\n`));
    process.exit(1);
  }
  writeAll(1, out);
  // Exit without closing the listener: closing a bound pipe handle would unlink the daemon's socket.
  process.exit(0);
}
