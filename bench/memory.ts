// Memory per container: N long-running containers (`ctr run -d`, one shim each) per runtime; RSS, PSS and
// private memory of the shim daemons from /proc/<pid>/smaps_rollup. Run as root after the build:
//   node dist/bench/memory.js [--n 10] [--versions 2.1,1.6] [--flags "|--no-opt"] [--runtime node,bun] [--write]
// --flags "A|B" adds our daemon started with Node flags A, then B (SHIM_TS_DAEMON_NODE_FLAGS; "" = none).
// --grouping adds ours with SHIM_TS_GROUPING=namespace: every container of the namespace on one daemon.
import {
  OURS, RUNC, containerd, fmt, label, memoryOf, remove, runDetached, shimPid, stamp, table, versions, arg, flag, record,
  type Containerd, jsRuntimes, isBun, bunTag,
} from "./lib.js";

interface Sample { rss: number; pss: number; priv: number; threads: number }

async function measure(c: Containerd, runtime: string, n: number, shared: boolean): Promise<Sample[]> {
  const ids = Array.from({ length: n }, (_, i) => `mem-${runtime === OURS ? "ts" : isBun(runtime) ? bunTag(runtime) : "go"}-${i}`);
  const out: Sample[] = [];
  try {
    for (const id of ids) await runDetached(c, runtime, id, ["sleep", "3600"]);
    const pids = await Promise.all(ids.map((id) => shimPid(c, id)));
    const distinct = [...new Set(pids)];
    const want = shared ? 1 : n;
    if (distinct.length !== want) throw new Error(`expected ${want} distinct shims, got ${distinct.length}`);
    // A State-like round through every shim already happened (ctr run waits for Start); sample now.
    for (const pid of distinct) out.push(memoryOf(pid));
  } finally {
    for (const id of ids) await remove(c, id).catch((e: Error) => console.error(e.message));
  }
  return out;
}

const avg = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const mb = (kib: number): string => fmt(kib / 1024, 1);

async function main(): Promise<void> {
  const n = Number(arg("n", "10"));
  const rows: (string | number)[][] = [];
  const variants: { name: string; runtime: string; env: Record<string, string>; shared?: boolean }[] = [
    { name: label(OURS) + " default flags", runtime: OURS, env: {} },
    { name: label(RUNC), runtime: RUNC, env: {} },
  ];
  for (const r of jsRuntimes()) variants.push({ name: label(r), runtime: r, env: {} });
  if (flag("grouping")) {
    variants.push({ name: `${label(OURS)} SHIM_TS_GROUPING=namespace`, runtime: OURS, env: { SHIM_TS_GROUPING: "namespace" }, shared: true });
  }
  for (const f of flag("flags") ? arg("flags", "").split("|") : []) {
    variants.push({ name: `${label(OURS)} ${f === "" ? "no flags" : f}`, runtime: OURS, env: { SHIM_TS_DAEMON_NODE_FLAGS: f } });
  }
  for (const v of versions("2.1,1.6")) {
    const results = new Map<string, Sample[]>();
    for (const x of variants) {
      const c = await containerd(v, x.env); // one containerd per variant: runs are independent
      try {
        results.set(x.name, await measure(c, x.runtime, n, x.shared === true));
      } finally {
        await c.stop();
      }
    }
    const sum = (xs: Sample[], k: keyof Sample): number => xs.reduce((a, e) => a + e[k], 0);
    const go = results.get(variants[1]!.name)!;
    for (const x of variants) {
      const s = results.get(x.name)!;
      // Per container: the sum over all shim daemons, divided by the containers they serve.
      const ratio = (k: keyof Sample): string => fmt(sum(s, k) / sum(go, k), 2);
      rows.push([v, x.name, n, s.length, mb(avg(s.map((e) => e.rss))), mb(avg(s.map((e) => e.pss))), mb(avg(s.map((e) => e.priv))),
        fmt(avg(s.map((e) => e.threads)), 0), mb(sum(s, "pss")), mb(sum(s, "pss") / n), `${ratio("rss")} / ${ratio("pss")}`]);
    }
  }
  record("Memory per container", `\`node dist/bench/memory.js ${process.argv.slice(2).join(" ")}\` (${stamp()}). ` +
    `${n} containers \`sleep 3600\` per runtime (one shim daemon each, or one for all with namespace grouping), sampled after \`ctr run -d\` returned. ` +
    "RSS/PSS/private/threads: MiB per shim daemon (average); private = Private_Clean + Private_Dirty; per container = total PSS / N; " +
    "ratio = total ours / total runc-v2 (so, per container).\n\n" +
    table(["containerd", "shim", "N", "daemons", "RSS MiB", "PSS MiB", "private MiB", "threads", "total PSS MiB", "PSS per container MiB", "ratio RSS / PSS"], rows));
}

await main();
