/**
 * The `start` action (shared/protocol.md §1.4, §1.5, §2.4, §2.6): group, bind the socket, spawn the
 * daemon with the listening socket on fd 3, place it, print the address. Nothing but the answer may
 * reach stdout/stderr on success (containerd reads them combined), and no process that outlives `start`
 * may hold containerd's pipes.
 */
import { jsonAnswer, MAX_VERSION_ENV, probeTaskVersion } from "./version-probe.js";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import type net from "node:net";
import path from "node:path";
import { SOCKET_PATH_LIMIT, socketAddress, socketDir, socketPath } from "../socket/address.js";
import type { Grouping, ShimConfig } from "../config/config.js";
import { daemonArgs, type Flags } from "../invocation/flags.js";
import { nodeBootEnv } from "../packaging/nodeenv.js";
import { openLogFifo } from "../diagnostics/logfifo.js";
import type { StartInput } from "../config/options.js";
import { closeInheritedFds, daemonNodeFlags, spawnDaemon } from "./spawn.js";
import { adjustOomScore, joinCgroup } from "./placement.js";
import { bindOrJoin } from "../socket/join.js";
import { listenerFd, removeSocket } from "../socket/socket.js";
import { readStdin } from "../invocation/stdin.js";

export { BIN_SCRIPT, closeInheritedFds, DAEMON_NODE_FLAGS, DAEMON_NODE_FLAGS_ENV, daemonCommand, daemonNodeFlags } from "./spawn.js";

const GROUP_LABELS = ["io.containerd.runc.v2.group", "io.kubernetes.cri.sandbox-id"];

/** The names config.ts reads, repeated so that `start` loads it only when there is a file to read. */
export const START_CONFIG_NAMES = {
  defaultPath: "/etc/containerd-shim-ts/config.toml",
  env: ["SHIM_TS_CONFIG", "SHIM_TS_GROUPING", "SHIM_TS_WARM", "SHIM_TS_WARM_IDLE_MS", "SHIM_TS_LINGER_MS"],
  daemonLogLevelEnv: "SHIM_TS_DAEMON_LOG_LEVEL",
  daemonLingerEnv: "SHIM_TS_DAEMON_LINGER_MS",
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
  const nodeFlags = daemonNodeFlags(env, config.runtimeFlags);
  // A new daemon: ask containerd's version while it spawns (version 3 on 2.x, see version-probe.ts).
  const probeVersion = (): Promise<2 | 3> => input.bootstrap !== undefined && env[MAX_VERSION_ENV] !== "2"
    ? Promise.resolve<2 | 3>(3)
    : probeTaskVersion(flags.publishBinary, env);
  // The warm spare (warm.ts), pod grouping only: tried when no daemon serves the pod yet.
  const warm = config.warm === true && config.grouping === "pod" ? await import("./warm.js") : undefined;
  const warmCtx = warm && { flags, bundle, socket: sockPath, socketDir: path.dirname(sockPath), debug, nodeFlags, log,
    ...(config.logLevel !== undefined ? { logLevel: config.logLevel } : {}),
    ...(input.bootstrap?.ttrpcAddress ? { ttrpcAddress: input.bootstrap.ttrpcAddress } : {}) };
  let version: Promise<2 | 3> | undefined;
  let adopted: number | "live" | undefined;
  if (warm && warmCtx && !existsSync(sockPath)) {
    closeInheritedFds();
    version = probeVersion();
    adopted = await warm.adoptSpare(warmCtx);
  }
  let bound: Awaited<ReturnType<typeof bindOrJoin>> | undefined;
  if (typeof adopted !== "number") {
    bound = await bindOrJoin(sockPath, flags.id, () => log.debug("the shim serving this group is shutting down", { address }));
    if (bound === "joined") {
      log.debug("reusing the shim serving this group", { address });
      writeAddressFile(bundle, address);
      void version?.catch(() => undefined);
      return await answer(address, input.bootstrap !== undefined, 2);
    }
  }
  version ??= probeVersion();
  let pid: number | undefined;
  try {
    if (typeof adopted === "number") {
      pid = adopted;
    } else {
      const daemonEnv = nodeBootEnv(env);
      if (input.bootstrap?.ttrpcAddress) daemonEnv["TTRPC_ADDRESS"] = input.bootstrap.ttrpcAddress;
      if (config.logLevel !== undefined) daemonEnv[START_CONFIG_NAMES.daemonLogLevelEnv] = config.logLevel;
      else delete daemonEnv[START_CONFIG_NAMES.daemonLogLevelEnv];
      // Namespace grouping only (config.ts is loaded whenever it is on): how long the daemon outlives its last pod.
      const lingerMs = config.grouping === "namespace" ? (await import("../config/config.js")).effectiveLingerMs(config) : 0;
      if (lingerMs > 0) daemonEnv[START_CONFIG_NAMES.daemonLingerEnv] = String(lingerMs);
      else delete daemonEnv[START_CONFIG_NAMES.daemonLingerEnv];
      const fd = listenerFd(bound as Exclude<typeof bound, "joined" | undefined>);
      closeInheritedFds([fd]);
      pid = await spawnDaemon(daemonArgs(flags, sockPath, debug), bundle, fd, daemonEnv, nodeFlags);
      // The daemon has its own copy of the listening socket now. This process must stop accepting on it at
      // once: it still runs its event loop (the version probe, up to 1 s), and a connection it accepted (a
      // Join, or containerd's connection for another container) would never be answered, then be closed when
      // it exits (namespace grouping, concurrent ctr run: "ttrpc: closed"). close() unlinks only the private
      // name the socket was bound to (already removed by bindSocket), not the group's path it was linked to.
      (bound as net.Server).close();
    }
    // The next spare boots while this one (or the cold daemon) is placed and containerd connects.
    const nextSpare = warm && warmCtx ? warm.spawnSpare(warmCtx, env, config.warmIdleMs) : undefined;
    const shimCgroup = shimOpts?.shimCgroup ?? "";
    if (shimCgroup !== "") {
      for (const err of joinCgroup(pid, shimCgroup)) log.warn("cannot move the shim into its cgroup", { error: err });
    }
    const oomErr = adjustOomScore(pid);
    if (oomErr !== undefined) log.debug("cannot adjust the shim's oom score", { error: oomErr });
    writeAddressFile(bundle, address);
    log.debug("shim daemon started", { pid, address, warm: typeof adopted === "number" || undefined });
    await nextSpare;
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
  process.exit(0);
}
