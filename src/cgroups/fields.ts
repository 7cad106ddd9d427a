/**
 * What the v1 and v2 stats share: stat-file keys copied into Metrics fields, u64 values, the hugetlb page
 * sizes a directory shows, and the rdma files (the same format in both hierarchies).
 */
import { readdir } from "node:fs/promises";
import { parseNestedKeys, parseU64, readOptional, u64 } from "./cgroup.js";

export type Fields = Record<string, number>;

/** `nr_throttled` -> `nrThrottled`: a stat file key as a Metrics field name. */
export const camel = (k: string) => k.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());

/** Copies `keys` of a parsed stat file into fields named by `name` (default camelCase of the key). */
export function pick(kv: Map<string, bigint>, keys: readonly string[], name: (k: string) => string = camel): Fields {
  const out: Fields = {};
  for (const k of keys) {
    const v = kv.get(k);
    if (v !== undefined) out[name(k)] = u64(v);
  }
  return out;
}

/** A cgroupfs number as a Metrics u64 ("max" becomes `max`, default 2^64-1); undefined if not a number. */
export const num = (s: string | undefined, max?: bigint) => {
  const v = parseU64(s, max);
  return v === undefined ? undefined : u64(v);
};

/** Hugetlb page sizes present in `dir`, from file names `hugetlb.<size>.<suffix>`. */
export async function hugeSizes(dir: string | undefined, suffix: string): Promise<string[]> {
  if (dir === undefined) return [];
  const files = await readdir(dir).catch(() => [] as string[]);
  const re = new RegExp(`^hugetlb\\.([^.]+)\\.${suffix.replace(".", "\\.")}$`);
  return files.flatMap((f) => re.exec(f)?.[1] ?? []).sort();
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

/** rdma.current and rdma.max of `dir`, undefined when it has neither. */
export async function readRdma(dir: string | undefined) {
  const [cur, max] = await Promise.all([readOptional(dir, "rdma.current"), readOptional(dir, "rdma.max")]);
  if (cur === undefined && max === undefined) return undefined;
  return { current: parseRdma(cur ?? ""), limit: parseRdma(max ?? "") };
}

