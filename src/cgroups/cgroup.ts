// Folder src/cgroups:
// Owns: a container's cgroup (found from its init pid, on unified, hybrid or legacy hosts), its stats as
//   cgroups v1/v2 Metrics, and the cgroupfs text parsers; used by task and sandbox.
// Must not import: runc, sandbox, shim, stdio, task, ttrpc.

/**
 * A container's cgroup: found once from its init pid at create (`/proc/<pid>/cgroup` mapped onto the
 * cgroup mounts of `/proc/self/mountinfo`) and kept until Delete, so Stats still answers after the init
 * exited (CRI re-reads metrics on exit 137). Also the small cgroupfs text parsers shared by stats and OOM.
 *
 * Host modes, as containerd names them: "unified" (/sys/fs/cgroup is cgroup2), "hybrid" (v1 controllers
 * plus an empty cgroup2 at /sys/fs/cgroup/unified) and "legacy" (v1 only). Hybrid and legacy hosts are
 * served with cgroup v1 paths and v1 metrics, like the runc shim does.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";

/** How the host mounts cgroups. */
export type CgroupMode = "legacy" | "hybrid" | "unified";

/** A cgroup mount: where it is and which cgroup path its root shows. */
export interface CgroupMount {
  mountpoint: string;
  root: string;
}

/** The cgroup mounts of a mount namespace: v1 hierarchies by controller name, and the cgroup2 mount. */
export interface CgroupMounts {
  v1: Map<string, CgroupMount>;
  v2?: CgroupMount;
}

/** A container's cgroup directories: per v1 controller, or the one cgroup2 directory. */
export type ContainerCgroup =
  | { readonly version: 1; readonly dirs: ReadonlyMap<string, string> }
  | { readonly version: 2; readonly dir: string };

const V1_CONTROLLERS = new Set([
  "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio", "blkio", "perf_event",
  "hugetlb", "pids", "rdma", "misc",
]);

/** Undoes mountinfo's octal escapes (`\040` for a space). */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parses `/proc/<pid>/mountinfo` text into its cgroup mounts (the first mount of each hierarchy wins). */
export function parseMountinfo(text: string): CgroupMounts {
  const out: CgroupMounts = { v1: new Map() };
  for (const line of text.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(" ");
    const [fstype, , superOpts = ""] = line.slice(sep + 3).split(" ");
    const root = pre[3];
    const mountpoint = pre[4];
    if (root === undefined || mountpoint === undefined) continue;
    const m = { mountpoint: unescapeMount(mountpoint), root: unescapeMount(root) };
    if (fstype === "cgroup2") {
      out.v2 ??= m;
    } else if (fstype === "cgroup") {
      for (const opt of superOpts.split(",")) {
        if (V1_CONTROLLERS.has(opt) || opt.startsWith("name=")) if (!out.v1.has(opt)) out.v1.set(opt, m);
      }
    }
  }
  return out;
}

/** The host mode these mounts describe (containerd's cgroups.Mode()). */
export function cgroupMode(mounts: CgroupMounts): CgroupMode {
  if (mounts.v1.size === 0 && mounts.v2 !== undefined) return "unified";
  return mounts.v2 !== undefined ? "hybrid" : "legacy";
}

/** Parses `/proc/<pid>/cgroup`: v1 paths by controller (split from "cpu,cpuacct"), and the `0::` path. */
export function parseProcCgroup(text: string): { v1: Map<string, string>; v2?: string } {
  const out: { v1: Map<string, string>; v2?: string } = { v1: new Map() };
  for (const line of text.split("\n")) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (m === null) continue;
    const [, id, ctrls = "", p = ""] = m;
    if (id === "0" && ctrls === "") out.v2 = p;
    else for (const c of ctrls.split(",")) if (c !== "") out.v1.set(c, p);
  }
  return out;
}

/** The directory of cgroup path `p` on mount `m` (strips the mount's root when `p` lies under it). */
function dirOn(m: CgroupMount, p: string): string {
  const rel = m.root !== "/" && (p === m.root || p.startsWith(`${m.root}/`)) ? p.slice(m.root.length) : p;
  return path.join(m.mountpoint, rel);
}

/**
 * Resolves a process's cgroup paths to directories. v1 when the host has any v1 hierarchy (legacy and
 * hybrid hosts), else v2. Undefined when the process shows no usable path.
 */
export function resolveCgroup(mounts: CgroupMounts, proc: { v1: Map<string, string>; v2?: string }): ContainerCgroup | undefined {
  if (cgroupMode(mounts) !== "unified") {
    const dirs = new Map<string, string>();
    for (const [ctrl, p] of proc.v1) {
      const m = mounts.v1.get(ctrl);
      if (m !== undefined) dirs.set(ctrl, dirOn(m, p));
    }
    return dirs.size > 0 ? { version: 1, dirs } : undefined;
  }
  if (mounts.v2 === undefined || proc.v2 === undefined) return undefined;
  return { version: 2, dir: dirOn(mounts.v2, proc.v2) };
}

/**
 * Finds the cgroup of process `pid` (call it while the process lives: at create, on `runc init`).
 * Undefined when the process is gone or shows no cgroup; never throws.
 */
export async function loadCgroup(pid: number, opts: { proc?: string } = {}): Promise<ContainerCgroup | undefined> {
  const proc = opts.proc ?? "/proc";
  try {
    const [mountinfo, cgroup] = await Promise.all([
      readFile(path.join(proc, "self", "mountinfo"), "utf8"),
      readFile(path.join(proc, String(pid), "cgroup"), "utf8"),
    ]);
    return resolveCgroup(parseMountinfo(mountinfo), parseProcCgroup(cgroup));
  } catch {
    return undefined;
  }
}

/**
 * A uint64 for the generated protobuf encoder. Values above 2^53 (v1 "unlimited" limits, v2 "max") are
 * returned in protobufjs' `{ low, high }` long form, which its encoder accepts wherever a uint64 goes,
 * so they reach the wire exactly; the generated types only say `number`, hence the cast.
 */
export function u64(v: bigint): number {
  if (v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  const low = Number(v & 0xffffffffn) | 0;
  const high = Number((v >> 32n) & 0xffffffffn) | 0;
  return { low, high, unsigned: true } as unknown as number;
}

/** 2^64-1, what cgroup v2 "max" stands for in containerd's metrics. */
export const MAX_U64 = 0xffffffffffffffffn;

/** Parses a cgroupfs number; "max" becomes `max` (default 2^64-1). Undefined if not a number. */
export function parseU64(s: string | undefined, max: bigint = MAX_U64): bigint | undefined {
  const t = s?.trim();
  if (t === undefined || t === "") return undefined;
  if (t === "max") return max;
  if (!/^\d+$/.test(t)) return undefined;
  return BigInt(t);
}

/** Parses "key value" lines (memory.stat, cpu.stat, memory.events, memory.oom_control). */
export function parseKeyValues(text: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of text.split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    const n = parseU64(v);
    if (k !== undefined && k !== "" && n !== undefined) out.set(k, n);
  }
  return out;
}

/** Parses "key=value" pairs of one line (io.stat, rdma.*, PSI). */
export function parseNestedKeys(fields: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of fields) {
    const i = f.indexOf("=");
    if (i > 0) out.set(f.slice(0, i), f.slice(i + 1));
  }
  return out;
}

/** Reads a small cgroupfs file, or undefined when it is missing or unreadable (never fatal). */
export async function readOptional(dir: string | undefined, file: string): Promise<string | undefined> {
  if (dir === undefined) return undefined;
  return readFile(path.join(dir, file), "utf8").catch(() => undefined);
}
