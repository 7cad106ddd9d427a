/** A container's cgroup (v1, hybrid or v2) and its metrics as containerd's cgroups Metrics messages. */
import type { ContainerCgroup } from "./cgroup.js";
import type { StatsAny } from "./stats.js";
import type { StatsOptions } from "./stats-v1.js";

export {
  loadCgroup, parseKeyValues, parseMountinfo, parseProcCgroup, cgroupMode, resolveCgroup,
  type CgroupMode, type ContainerCgroup,
} from "./cgroup.js";
export type { StatsAny, StatsOptions };

/**
 * A cgroup's metrics (stats.ts), loaded at the first call: the generated Metrics messages and their readers
 * are the largest part of what a daemon would otherwise evaluate at boot that only a Stats or SandboxMetrics
 * call needs (bench/RESULTS.md, "Daemon boot: the metrics code loaded on first use").
 */
export async function readStats(cg: ContainerCgroup | undefined, opts?: StatsOptions): Promise<StatsAny> {
  return (await import("./stats.js")).readStats(cg, opts);
}
