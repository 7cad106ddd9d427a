/** Shapes runc prints and the small interfaces the runc module needs from others. */

/**
 * The pids whose exit libuv collects itself (structurally identical to `sys.ChildRegistry`, declared
 * here so src/runc does not depend on src/sys): a subreaper's reaper must not wait for them.
 */
export interface ChildRegistry {
  own(pid: number): void;
  disown(pid: number): void;
}

/** Container statuses `runc state` prints. */
export type RuncStatus = "created" | "running" | "paused" | "stopped";

/** The JSON of `runc state <id>` (protocol.md §8.3). */
export interface RuncState {
  ociVersion: string;
  id: string;
  /** Init pid; 0 once stopped. */
  pid: number;
  status: RuncStatus;
  bundle: string;
  rootfs: string;
  /** RFC 3339 time. */
  created: string;
  annotations?: Record<string, string>;
  owner: string;
}

/** `runc --version`, parsed. */
export interface RuncVersion {
  /** e.g. `1.1.5+ds1`. */
  runc: string;
  commit?: string;
  /** OCI runtime-spec version, e.g. `1.0.2-dev`. */
  spec?: string;
}

/** stdio for a runc call whose own stdio becomes the container process's: a real fd of ours, or /dev/null. */
export type RuncStdio = [number | "ignore", number | "ignore", number | "ignore"];
