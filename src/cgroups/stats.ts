/**
 * Stats: a container's cgroup metrics read straight from cgroupfs (small files, no spawn) and encoded as
 * `io.containerd.cgroups.v1.Metrics` (stats-v1.ts) or `io.containerd.cgroups.v2.Metrics` (stats-v2.ts)
 * (protocol.md §4.7). Missing files are skipped; only a missing cgroup is an error (NotFound "cgroup does
 * not exist", as the runc shim).
 */
import { stat } from "node:fs/promises";
import { notFound } from "../errdefs.js";
import { io } from "../gen/metrics.js";
import type { ContainerCgroup } from "./cgroup.js";
import { v1Metrics, type StatsOptions } from "./stats-v1.js";
import { v2Metrics } from "./stats-v2.js";

const M1 = io.containerd.cgroups.v1;
const M2 = io.containerd.cgroups.v2;

/** StatsResponse.stats: a google.protobuf.Any. */
export interface StatsAny {
  typeUrl: string;
  value: Uint8Array;
}

/** Reads the metrics of `cg` as the Any of a StatsResponse. NotFound when there is no cgroup (any more). */
export async function readStats(cg: ContainerCgroup | undefined, opts: StatsOptions = {}): Promise<StatsAny> {
  const dirs = cg === undefined ? [] : cg.version === 1 ? [...cg.dirs.values()] : [cg.dir];
  const alive = await Promise.all(dirs.map((d) => stat(d).then((s) => s.isDirectory(), () => false)));
  if (cg === undefined || !alive.includes(true)) throw notFound("cgroup does not exist");
  if (cg.version === 1) {
    const value = M1.Metrics.encode(await v1Metrics(cg.dirs, opts)).finish();
    return { typeUrl: "io.containerd.cgroups.v1.Metrics", value };
  }
  return { typeUrl: "io.containerd.cgroups.v2.Metrics", value: M2.Metrics.encode(await v2Metrics(cg.dir)).finish() };
}
