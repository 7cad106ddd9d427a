// /proc and mountinfo inspection for e2e tests: which processes, zombies and mounts a test left behind.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** Pids (other than ours) whose cmdline, cwd or root refers to `dir`: shims, runc, container processes. */
export function processesUnder(dir: string, exclude: (number | undefined)[] = []): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid || exclude.includes(pid)) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      const refs = cmd.includes(dir) || isUnder(safeReadlink(`/proc/${pid}/cwd`), dir) || isUnder(safeReadlink(`/proc/${pid}/root`), dir);
      if (refs && !isZombie(pid)) out.push(pid);
    } catch { /* raced with exit */ }
  }
  return out;
}

/** Live pids in the cgroup `/<ns>[/<id>]` that containerd's OCI spec gives ctr containers (cgroup v1 and v2). */
export function containerProcesses(ns: string, id?: string): number[] {
  const want = id === undefined ? `:/${ns}/` : `:/${ns}/${id}\n`;
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if ((readFileSync(`/proc/${name}/cgroup`, "utf8") + "\n").includes(want) && !isZombie(Number(name))) out.push(Number(name));
    } catch { /* gone */ }
  }
  return out;
}

/** Zombie pids whose parent is one of `parents`. */
export function zombiesOf(parents: number[]): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (f[0] === "Z" && parents.includes(Number(f[1]))) out.push(Number(name));
    } catch { /* gone */ }
  }
  return out;
}

function isZombie(pid: number): boolean {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
}

function safeReadlink(p: string): string {
  try { return readlinkSync(p); } catch { return ""; }
}

function isUnder(p: string, dir: string): boolean { return p === dir || p.startsWith(dir + "/"); }

/** Mount points at or below `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  const info = readFileSync("/proc/self/mountinfo", "utf8");
  const points = info.split("\n").filter(Boolean)
    .map((l) => l.split(" ")[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((m) => isUnder(m, dir));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}
