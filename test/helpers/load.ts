// Resource figures of a process for load tests: open fds, RSS/PSS, and simple latency statistics.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** Number of open fds of `pid`. */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** What the open fds of `pid` point at, counted by kind (socket, pipe, anon_inode:..., or a path's top directory). */
export function fdKinds(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target = "?";
    try {
      const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      target = /^(socket|pipe|anon_inode:[^\]]+)/.exec(link)?.[1] ?? link.split("/").slice(0, 3).join("/");
    } catch { /* closed meanwhile */ }
    out[target] = (out[target] ?? 0) + 1;
  }
  return out;
}

/** RSS and PSS of `pid` in KiB (smaps_rollup). */
export function memKiB(pid: number): { rss: number; pss: number } {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
  return { rss: get("Rss"), pss: get("Pss") };
}

/** Latency statistics of `ms` (sorted copy): count, p50, p99, max. */
export function stats(ms: number[]): { n: number; p50: number; p99: number; max: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => (s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor(q * s.length))]!);
  return { n: s.length, p50: round(at(0.5)), p99: round(at(0.99)), max: round(s[s.length - 1] ?? 0) };
}

const round = (x: number) => Math.round(x * 10) / 10;
