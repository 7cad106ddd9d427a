/** A container's cgroup (v1, hybrid or v2) and its metrics as containerd's cgroups Metrics messages. */
export {
  loadCgroup, parseKeyValues, parseMountinfo, parseProcCgroup, cgroupMode, resolveCgroup,
  type CgroupMode, type ContainerCgroup,
} from "./cgroup.js";
export { readStats, type StatsAny } from "./stats.js";
export type { StatsOptions } from "./stats-v1.js";
