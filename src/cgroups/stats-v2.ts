/**
 * cgroup v2 stats: `io.containerd.cgroups.v2.Metrics` from the container's one cgroup2 directory (pids,
 * cpu, memory, memory events, io, PSI pressure, hugetlb, rdma).
 */
import type { io } from "../gen/metrics.js";
import { parseKeyValues, parseNestedKeys, readOptional, u64, MAX_U64 } from "./cgroup.js";
import { hugeSizes, num, pick, readRdma } from "./fields.js";

type V2 = io.containerd.cgroups.v2.Metrics.$Properties;

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
