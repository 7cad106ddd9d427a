/**
 * Stats: a container's cgroup metrics read straight from cgroupfs (small files, no spawn) and encoded as
 * `io.containerd.cgroups.v1.Metrics` or `io.containerd.cgroups.v2.Metrics` (protocol.md §4.7). Missing
 * files are skipped; only a missing cgroup is an error (NotFound "cgroup does not exist", as the runc shim).
 * Not filled: v1 `cgroup_stats` (taskstats netlink) and `network` (no cgroup file), as in the runc shim.
 */
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { notFound } from "../errdefs.js";
import { io } from "../gen/metrics.js";
import {
  parseKeyValues, parseNestedKeys, parseU64, readOptional, u64, MAX_U64, type ContainerCgroup,
} from "./cgroup.js";

const M1 = io.containerd.cgroups.v1;
const M2 = io.containerd.cgroups.v2;
type V1 = io.containerd.cgroups.v1.Metrics.$Properties;
type V2 = io.containerd.cgroups.v2.Metrics.$Properties;
type Fields = Record<string, number>;

/** StatsResponse.stats: a google.protobuf.Any. */
export interface StatsAny {
  typeUrl: string;
  value: Uint8Array;
}

/** Options for reading stats; `sysDevBlock` names block devices (default /sys/dev/block). */
export interface StatsOptions {
  sysDevBlock?: string;
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

const camel = (k: string) => k.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());

/** Copies `keys` of a parsed stat file into fields named by `name` (default camelCase of the key). */
function pick(kv: Map<string, bigint>, keys: readonly string[], name: (k: string) => string = camel): Fields {
  const out: Fields = {};
  for (const k of keys) {
    const v = kv.get(k);
    if (v !== undefined) out[name(k)] = u64(v);
  }
  return out;
}

const num = (s: string | undefined, max?: bigint) => {
  const v = parseU64(s, max);
  return v === undefined ? undefined : u64(v);
};

// ---- cgroup v1 ----

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

/** Hugetlb page sizes present in `dir`, from file names `hugetlb.<size>.<suffix>`. */
async function hugeSizes(dir: string | undefined, suffix: string): Promise<string[]> {
  if (dir === undefined) return [];
  const files = await readdir(dir).catch(() => [] as string[]);
  const re = new RegExp(`^hugetlb\\.([^.]+)\\.${suffix.replace(".", "\\.")}$`);
  return files.flatMap((f) => re.exec(f)?.[1] ?? []).sort();
}

async function v1Hugetlb(dir: string | undefined): Promise<io.containerd.cgroups.v1.HugetlbStat.$Properties[]> {
  return Promise.all((await hugeSizes(dir, "usage_in_bytes")).map(async (pagesize) => {
    const [usage, max, failcnt] = await Promise.all(["usage_in_bytes", "max_usage_in_bytes", "failcnt"]
      .map((f) => readOptional(dir, `hugetlb.${pagesize}.${f}`)));
    return { pagesize, usage: num(usage), max: num(max), failcnt: num(failcnt) };
  }));
}

/** Parses rdma.current / rdma.max lines ("mlx4_0 hca_handle=2 hca_object=2000"; "max" is 2^32-1). */
export function parseRdma(text: string): { device: string; hcaHandles: number; hcaObjects: number }[] {
  return text.split("\n").flatMap((line) => {
    const [device, ...rest] = line.trim().split(/\s+/);
    if (device === undefined || device === "") return [];
    const kv = parseNestedKeys(rest);
    const n = (k: string) => Number(parseU64(kv.get(k), 0xffffffffn) ?? 0n);
    return [{ device, hcaHandles: n("hca_handle"), hcaObjects: n("hca_object") }];
  });
}

async function readRdma(dir: string | undefined) {
  const [cur, max] = await Promise.all([readOptional(dir, "rdma.current"), readOptional(dir, "rdma.max")]);
  if (cur === undefined && max === undefined) return undefined;
  return { current: parseRdma(cur ?? ""), limit: parseRdma(max ?? "") };
}

// ---- cgroup v2 ----

const V2_MEMORY_KEYS = [
  "anon", "file", "kernel_stack", "slab", "sock", "shmem", "file_mapped", "file_dirty", "file_writeback", "anon_thp",
  "inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable", "slab_reclaimable",
  "slab_unreclaimable", "pgfault", "pgmajfault", "workingset_refault", "workingset_activate",
  "workingset_nodereclaim", "pgrefill", "pgscan", "pgsteal", "pgactivate", "pgdeactivate", "pglazyfree",
  "pglazyfreed", "thp_fault_alloc", "thp_collapse_alloc", "workingset_refault_anon", "workingset_refault_file",
  "workingset_activate_anon", "workingset_activate_file",
] as const;

/** Parses a PSI file (cpu.pressure, memory.pressure, io.pressure). */
export function parsePsi(text: string | undefined): io.containerd.cgroups.v2.PSIStats.$Properties | undefined {
  if (text === undefined) return undefined;
  const out: io.containerd.cgroups.v2.PSIStats.$Properties = {};
  for (const line of text.split("\n")) {
    const [kind, ...rest] = line.trim().split(/\s+/);
    if (kind !== "some" && kind !== "full") continue;
    const kv = parseNestedKeys(rest);
    const f = (k: string) => Number(kv.get(k) ?? 0);
    out[kind] = { avg10: f("avg10"), avg60: f("avg60"), avg300: f("avg300"), total: num(kv.get("total")) ?? 0 };
  }
  return out;
}

/** Parses io.stat ("8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0"). */
export function parseIoStat(text: string): io.containerd.cgroups.v2.IOEntry.$Properties[] {
  return text.split("\n").flatMap((line) => {
    const [dev, ...rest] = line.trim().split(/\s+/);
    const m = /^(\d+):(\d+)$/.exec(dev ?? "");
    if (m === null) return [];
    const kv = parseNestedKeys(rest);
    const [rbytes, wbytes, rios, wios] = ["rbytes", "wbytes", "rios", "wios"].map((k) => num(kv.get(k)) ?? 0);
    return [{ major: Number(m[1]), minor: Number(m[2]), rbytes, wbytes, rios, wios }];
  });
}

/** Builds v2 Metrics from the container's cgroup2 directory. */
export async function v2Metrics(dir: string): Promise<V2> {
  const files = ["pids.current", "pids.max", "cpu.stat", "cpu.pressure", "memory.stat", "memory.current",
    "memory.max", "memory.swap.current", "memory.swap.max", "memory.peak", "memory.swap.peak", "memory.pressure",
    "memory.events", "io.stat", "io.pressure"] as const;
  const text = Object.fromEntries(await Promise.all(files.map(async (f) => [f, await readOptional(dir, f)] as const)));
  const m: V2 = { hugetlb: await v2Hugetlb(dir) };
  if (text["pids.current"] !== undefined || text["pids.max"] !== undefined) {
    m.pids = { current: num(text["pids.current"]), limit: num(text["pids.max"], MAX_U64) };
  }
  if (text["cpu.stat"] !== undefined) {
    const keys = ["usage_usec", "user_usec", "system_usec", "nr_periods", "nr_throttled", "throttled_usec",
      "nr_bursts", "burst_usec"];
    m.cpu = { ...pick(parseKeyValues(text["cpu.stat"]), keys), psi: parsePsi(text["cpu.pressure"]) };
  }
  if (text["memory.stat"] !== undefined || text["memory.current"] !== undefined) {
    m.memory = {
      ...pick(parseKeyValues(text["memory.stat"] ?? ""), V2_MEMORY_KEYS),
      usage: num(text["memory.current"]), usageLimit: num(text["memory.max"]),
      swapUsage: num(text["memory.swap.current"]), swapLimit: num(text["memory.swap.max"]),
      maxUsage: num(text["memory.peak"]), swapMaxUsage: num(text["memory.swap.peak"]),
      psi: parsePsi(text["memory.pressure"]),
    };
  }
  if (text["memory.events"] !== undefined) {
    m.memoryEvents = pick(parseKeyValues(text["memory.events"]), ["low", "high", "max", "oom", "oom_kill", "oom_group_kill"]);
  }
  if (text["io.stat"] !== undefined || text["io.pressure"] !== undefined) {
    m.io = { usage: parseIoStat(text["io.stat"] ?? ""), psi: parsePsi(text["io.pressure"]) };
  }
  const rdma = await readRdma(dir);
  if (rdma !== undefined) m.rdma = rdma;
  return m;
}

async function v2Hugetlb(dir: string): Promise<io.containerd.cgroups.v2.HugeTlbStat.$Properties[]> {
  return Promise.all((await hugeSizes(dir, "current")).map(async (pagesize) => {
    const [current, max, events] = await Promise.all(["current", "max", "events"]
      .map((f) => readOptional(dir, `hugetlb.${pagesize}.${f}`)));
    const failcnt = parseKeyValues(events ?? "").get("max");
    return { pagesize, current: num(current), max: num(max), failcnt: failcnt === undefined ? undefined : u64(failcnt) };
  }));
}
