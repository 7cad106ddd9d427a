/**
 * cgroup v1 stats: `io.containerd.cgroups.v1.Metrics` from the per-controller directories (pids, cpu and
 * cpuacct, memory, blkio, hugetlb, rdma). Not filled: `cgroup_stats` (taskstats netlink) and `network`
 * (no cgroup file), as in the runc shim.
 */
import path from "node:path";
import type { io } from "../gen/metrics.js";
import { parseKeyValues, readOptional, u64 } from "./cgroup.js";
import { camel, hugeSizes, num, pick, readRdma } from "./fields.js";

type V1 = io.containerd.cgroups.v1.Metrics.$Properties;

/** Options for reading stats; `sysDevBlock` names block devices (default /sys/dev/block). */
export interface StatsOptions {
  sysDevBlock?: string;
}

const V1_MEMORY_KEYS = [
  "cache", "rss", "rss_huge", "mapped_file", "dirty", "writeback", "pgpgin", "pgpgout", "pgfault", "pgmajfault",
  "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable",
] as const;
const V1_RENAME: Record<string, string> = {
  pgpgin: "pgPgIn", pgpgout: "pgPgOut", pgfault: "pgFault", pgmajfault: "pgMajFault",
  hierarchical_memsw_limit: "hierarchicalSwapLimit",
};
const v1Name = (k: string) => {
  const total = k.startsWith("total_");
  const base = total ? k.slice(6) : k;
  const n = V1_RENAME[base] ?? camel(base);
  return total ? `total${n[0]?.toUpperCase() ?? ""}${n.slice(1)}` : n;
};
/** USER_HZ is 100 on every Linux ABI; cpuacct.stat counts in its ticks. */
const NS_PER_TICK = 10_000_000n;

/** Builds v1 Metrics from per-controller directories. */
export async function v1Metrics(dirs: ReadonlyMap<string, string>, opts: StatsOptions = {}): Promise<V1> {
  const [pids, cpu, memory, blkio, hugetlb, rdma] = await Promise.all([
    v1Pids(dirs.get("pids")), v1Cpu(dirs.get("cpuacct"), dirs.get("cpu")), v1Memory(dirs.get("memory")),
    v1Blkio(dirs.get("blkio"), opts), v1Hugetlb(dirs.get("hugetlb")), readRdma(dirs.get("rdma")),
  ]);
  const m: V1 = { ...memory, hugetlb };
  if (pids !== undefined) m.pids = pids;
  if (cpu !== undefined) m.cpu = cpu;
  if (blkio !== undefined) m.blkio = blkio;
  if (rdma !== undefined) m.rdma = rdma;
  return m;
}

async function v1Pids(dir: string | undefined): Promise<V1["pids"]> {
  const [cur, max] = await Promise.all([readOptional(dir, "pids.current"), readOptional(dir, "pids.max")]);
  if (cur === undefined && max === undefined) return undefined;
  return { current: num(cur), limit: num(max, 0n) }; // v1 reports "max" as limit 0
}

async function v1Cpu(acct: string | undefined, cpu: string | undefined): Promise<V1["cpu"]> {
  const [usage, percpu, st, throttle] = await Promise.all([
    readOptional(acct, "cpuacct.usage"), readOptional(acct, "cpuacct.usage_percpu"),
    readOptional(acct, "cpuacct.stat"), readOptional(cpu, "cpu.stat"),
  ]);
  if (usage === undefined && percpu === undefined && st === undefined && throttle === undefined) return undefined;
  const ticks = parseKeyValues(st ?? "");
  const ns = (k: string) => {
    const t = ticks.get(k);
    return t === undefined ? undefined : u64(t * NS_PER_TICK);
  };
  const perCpu = (percpu ?? "").trim().split(/\s+/).flatMap((s) => (s === "" ? [] : [num(s) ?? 0]));
  const t = parseKeyValues(throttle ?? "");
  return {
    usage: { total: num(usage), kernel: ns("system"), user: ns("user"), perCpu },
    throttling: pick(t, ["nr_periods", "nr_throttled", "throttled_time"], (k) =>
      ({ nr_periods: "periods", nr_throttled: "throttledPeriods" })[k] ?? "throttledTime"),
  };
}

async function v1Entry(dir: string, prefix: string) {
  const [usage, limit, max, failcnt] = await Promise.all(
    ["usage_in_bytes", "limit_in_bytes", "max_usage_in_bytes", "failcnt"].map((f) => readOptional(dir, `${prefix}${f}`)),
  );
  const e = { usage: num(usage), limit: num(limit), max: num(max), failcnt: num(failcnt) };
  return Object.values(e).some((v) => v !== undefined) ? e : undefined;
}

async function v1Memory(dir: string | undefined): Promise<Pick<V1, "memory" | "memoryOomControl">> {
  if (dir === undefined) return {};
  const [st, usage, swap, kernel, kernelTcp, oom] = await Promise.all([
    readOptional(dir, "memory.stat"), v1Entry(dir, "memory."), v1Entry(dir, "memory.memsw."),
    v1Entry(dir, "memory.kmem."), v1Entry(dir, "memory.kmem.tcp."), readOptional(dir, "memory.oom_control"),
  ]);
  const out: Pick<V1, "memory" | "memoryOomControl"> = {};
  if (st !== undefined || usage !== undefined) {
    const keys = [...V1_MEMORY_KEYS, "hierarchical_memory_limit", "hierarchical_memsw_limit",
      ...V1_MEMORY_KEYS.map((k) => `total_${k}`)];
    out.memory = { ...pick(parseKeyValues(st ?? ""), keys, v1Name), usage, swap, kernel, kernelTcp };
  }
  if (oom !== undefined) out.memoryOomControl = pick(parseKeyValues(oom), ["oom_kill_disable", "under_oom", "oom_kill"]);
  return out;
}

const BLKIO_STATS = [
  "io_service_bytes_recursive", "io_serviced_recursive", "io_queued_recursive", "io_service_time_recursive",
  "io_wait_time_recursive", "io_merged_recursive", "io_time_recursive", "sectors_recursive",
] as const;

/** Parses a v1 blkio file ("8:0 Read 4096", or "8:0 4096"; "Total N" lines are dropped). */
export function parseBlkio(text: string): { op: string; major: number; minor: number; value: number }[] {
  const out: { op: string; major: number; minor: number; value: number }[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    const dev = /^(\d+):(\d+)$/.exec(f[0] ?? "");
    const value = num(f[f.length - 1]);
    if (dev === null || value === undefined || f.length < 2 || f.length > 3) continue;
    out.push({ op: f.length === 3 ? (f[1] ?? "") : "", major: Number(dev[1]), minor: Number(dev[2]), value });
  }
  return out;
}

async function v1Blkio(dir: string | undefined, opts: StatsOptions): Promise<V1["blkio"]> {
  if (dir === undefined) return undefined;
  const names = new Map<string, Promise<string>>();
  const devName = (major: number, minor: number) => {
    const key = `${major}:${minor}`;
    if (!names.has(key)) names.set(key, blockDeviceName(key, opts.sysDevBlock ?? "/sys/dev/block"));
    return names.get(key) ?? Promise.resolve("");
  };
  const lists = await Promise.all(BLKIO_STATS.map(async (s) => {
    // The CFQ files are gone on blk-mq kernels: fall back to the throttle, then the BFQ accounting.
    const fallbacks = s === "io_service_bytes_recursive" || s === "io_serviced_recursive"
      ? [`blkio.${s}`, `blkio.throttle.${s}`, `blkio.bfq.${s}`] : [`blkio.${s}`, `blkio.bfq.${s}`];
    let entries: ReturnType<typeof parseBlkio> = [];
    for (const f of fallbacks) {
      entries = parseBlkio((await readOptional(dir, f)) ?? "");
      if (entries.length > 0) break;
    }
    return Promise.all(entries.map(async (e) => ({ ...e, device: await devName(e.major, e.minor) })));
  }));
  const out: Record<string, unknown[]> = {};
  BLKIO_STATS.forEach((s, i) => { out[camel(s)] = lists[i] ?? []; });
  return out as V1["blkio"];
}

/** "/dev/<DEVNAME>" from the device's uevent, or "" when unknown. */
async function blockDeviceName(majMin: string, sysDevBlock: string): Promise<string> {
  const uevent = await readOptional(path.join(sysDevBlock, majMin), "uevent");
  const m = /^DEVNAME=(.+)$/m.exec(uevent ?? "");
  return m?.[1] ? `/dev/${m[1]}` : "";
}

async function v1Hugetlb(dir: string | undefined): Promise<io.containerd.cgroups.v1.HugetlbStat.$Properties[]> {
  return Promise.all((await hugeSizes(dir, "usage_in_bytes")).map(async (pagesize) => {
    const [usage, max, failcnt] = await Promise.all(["usage_in_bytes", "max_usage_in_bytes", "failcnt"]
      .map((f) => readOptional(dir, `hugetlb.${pagesize}.${f}`)));
    return { pagesize, usage: num(usage), max: num(max), failcnt: num(failcnt) };
  }));
}

