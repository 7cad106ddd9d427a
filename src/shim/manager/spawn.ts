/**
 * How `start` spawns a shim daemon (shared/protocol.md §2.4): the command line (Node flags, launcher or single
 * executable), a detached process with no stdio of containerd's, and no inherited fd but the listener.
 * Used for the daemon of a pod and for the warm spare (src/shim/spare/).
 */
import { spawn } from "node:child_process";
import { closeSync, readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { PACKAGED } from "../packaging/packaged.js";

/** The launcher the daemon is started with (dist/src/shim/manager/spawn.js -> bin/). */
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

/** Spawns a detached daemon (its own session, stdio /dev/null, `fd` as its fd 3 if given); resolves its pid. */
export function spawnDaemon(args: string[], cwd: string, fd: number | undefined, env: NodeJS.ProcessEnv, nodeFlags: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, daemonCommand(nodeFlags, args), {
      cwd,
      env,
      detached: true,
      stdio: fd === undefined ? ["ignore", "ignore", "ignore"] : ["ignore", "ignore", "ignore", fd],
    });
    child.once("error", (err) => reject(new Error(`Cannot spawn the shim daemon: ${err.message}`, { cause: err })));
    child.once("spawn", () => {
      child.unref();
      if (child.pid === undefined) reject(new Error("Cannot spawn the shim daemon: no pid"));
      else resolve(child.pid);
    });
  });
}

