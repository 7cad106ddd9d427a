/**
 * Where `start` puts the daemon (peers.md §2.15): into `shim_cgroup` (so its memory and CPU are charged to
 * the pod) and at containerd's `oom_score_adj` + 1 (so the OOM killer prefers the shim over containerd).
 * Both are best effort: failures are returned for logging, never thrown.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const CGROUP_ROOT = "/sys/fs/cgroup";
const MAX_OOM_SCORE_ADJ = 1000;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The `cgroup.procs` files to write for `cgroupPath` (one on cgroup v2, one per v1 controller). */
export function cgroupProcsFiles(cgroupPath: string, root: string = CGROUP_ROOT): string[] {
  const rel = cgroupPath.replace(/^\/+/, "");
  if (existsSync(path.join(root, "cgroup.controllers"))) return [path.join(root, rel, "cgroup.procs")];
  const files: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return files;
  }
  for (const controller of entries.sort()) {
    const file = path.join(root, controller, rel, "cgroup.procs");
    if (existsSync(file)) files.push(file);
  }
  return files;
}

/** Moves `pid` into `cgroupPath` (relative to the cgroup root). Returns the errors, if any. */
export function joinCgroup(pid: number, cgroupPath: string, root: string = CGROUP_ROOT): string[] {
  const files = cgroupProcsFiles(cgroupPath, root);
  if (files.length === 0) return [`Cannot join cgroup "${cgroupPath}": not found`];
  const errors: string[] = [];
  for (const file of files) {
    try {
      writeFileSync(file, String(pid));
    } catch (err) {
      errors.push(`Cannot write "${file}": ${message(err)}`);
    }
  }
  return errors;
}

/**
 * Sets `pid`'s oom_score_adj to the parent's (containerd's) + 1, capped at 1000. Lowering needs
 * CAP_SYS_RESOURCE (protocol.md §11 item 4), so EPERM is expected on some hosts. Returns an error text or
 * undefined.
 */
export function adjustOomScore(pid: number, parentPid: number = process.ppid): string | undefined {
  try {
    const parent = Number.parseInt(readFileSync(`/proc/${parentPid}/oom_score_adj`, "utf8").trim(), 10);
    if (!Number.isFinite(parent)) return `Cannot parse oom_score_adj of ${parentPid}`;
    const score = Math.min(parent + 1, MAX_OOM_SCORE_ADJ);
    writeFileSync(`/proc/${pid}/oom_score_adj`, String(score));
    return undefined;
  } catch (err) {
    return `Cannot set oom_score_adj of ${pid}: ${message(err)}`;
  }
}
