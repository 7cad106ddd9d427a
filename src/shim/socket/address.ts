// Folder src/shim/socket:
// Owns: the shim's socket: its address, binding, the inherited fd, the same-user check, and the Group/Join
//   rendezvous (both sides).
// Must not import: cgroups, runc, sandbox, shim/config, shim/daemon, shim/diagnostics, shim/entry, shim/events,
//   shim/manager, shim/packaging, shim/spare, stdio, task.

/**
 * Shim socket addresses (shared/protocol.md §2.1): `unix://<dir>/<sha256 hex of join(address, ns, group)>`,
 * the convention of the Go and Rust shim libraries, so two `start`s of one pod compute the same path.
 */
import { createHash } from "node:crypto";
import path from "node:path";

/** containerd's hard-coded shim socket directory (`defaults.DefaultStateDir + "/s"`). */
export const DEFAULT_SOCKET_DIR = "/run/containerd/s";

/** Longest socket path the Go library accepts (`socketPathLimit`, sun_path minus slack). */
export const SOCKET_PATH_LIMIT = 106;

/**
 * Test hook: when set, `start` creates sockets in this directory instead of {@link DEFAULT_SOCKET_DIR}
 * (BootstrapParams.socket_dir from containerd 2.3+ still wins). Not meant for production use.
 */
export const SOCKET_DIR_ENV = "SHIM_TS_SOCKET_DIR";

/** Go `filepath.Join`: join the non-empty elements and clean the result (no trailing slash). */
function goJoin(...elems: string[]): string {
  const parts = elems.filter((e) => e !== "");
  if (parts.length === 0) return "";
  const joined = path.posix.normalize(parts.join("/"));
  return joined.length > 1 && joined.endsWith("/") ? joined.slice(0, -1) : joined;
}

/**
 * The shim socket address for a grouping id: `unix://<socketDir>/<hex sha256 of join(address, ns, group)>`.
 * `containerdAddress` is the raw `-address` value (containerd's gRPC socket path).
 */
export function socketAddress(
  containerdAddress: string,
  namespace: string,
  groupId: string,
  socketDir: string = DEFAULT_SOCKET_DIR,
): string {
  const key = goJoin(containerdAddress, namespace, groupId);
  const hash = createHash("sha256").update(key, "utf8").digest("hex");
  return `unix://${path.posix.join(socketDir, hash)}`;
}

/** The filesystem path of a `unix://` address (an address without the scheme is returned unchanged). */
export function socketPath(address: string): string {
  return address.startsWith("unix://") ? address.slice("unix://".length) : address;
}

/** The socket directory to use: containerd's `socket_dir` (2.3+), else the test hook, else the default. */
export function socketDir(fromBootstrap: string | undefined, env: NodeJS.ProcessEnv): string {
  if (fromBootstrap) return fromBootstrap;
  const fromEnv = env[SOCKET_DIR_ENV];
  return fromEnv ? fromEnv : DEFAULT_SOCKET_DIR;
}
