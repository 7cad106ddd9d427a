// Latency of whole operations through containerd: `ctr run --rm busybox id true` and `ctr task exec ... true`
// on a running container, ours vs containerd-shim-runc-v2, interleaved run by run. Run as root after the build:
//   node dist/bench/latency.js [--runs 20] [--versions 2.1,1.6] [--also /abs/path/containerd-shim-x-v2] [--write]
// --also adds a third runtime given as an absolute shim path (e.g. an older build of ours, for before/after).
// bench/all.ts calls measureLatency().
import {
  OURS, RUNC, RUNTIMES, BUSYBOX_REF, containerd, fmt, label, quantile, remove, runDetached, stamp, table, timeCtr, versions, arg,
  flag, isMain, record, type ContainerdVersion,
} from "./lib.js";

export interface Latency {
  /** Wall ms of each `ctr run --rm … true`, per runtime. */
  run: Map<string, number[]>;
  /** Wall ms of each `ctr task exec … true`, per runtime. */
  exec: Map<string, number[]>;
}

const tag = (r: string): string => (r === OURS ? "ts" : r === RUNC ? "go" : "also");

export interface LatencyOptions {
  /** Reaches every shim's `start` (e.g. SHIM_TS_GROUPING=namespace). */
  env?: Record<string, string>;
  /** One `sleep` container per runtime kept running throughout, so that a grouped daemon is already up. */
  resident?: boolean;
  /** Measure `ctr task exec` too (default true). */
  exec?: boolean;
}

/** `runs` of each operation per runtime on a fresh containerd `v`, runtimes interleaved, after one warm-up each. */
export async function measureLatency(v: ContainerdVersion, runs: number, runtimes: readonly string[] = RUNTIMES,
  opts: LatencyOptions = {}): Promise<Latency> {
  const c = await containerd(v, opts.env);
  try {
    const run = new Map<string, number[]>(runtimes.map((r) => [r, []]));
    const exec = new Map<string, number[]>(runtimes.map((r) => [r, []]));
    if (opts.resident) for (const r of runtimes) await runDetached(c, r, `resident-${tag(r)}`, ["sleep", "3600"]);
    // Warm-up: one of each (page cache, image unpack, first shim binary load).
    for (const r of runtimes) await timeCtr(c, ["run", "--rm", "--runtime", r, BUSYBOX_REF, `warm-${tag(r)}`, "true"]);
    for (let i = 0; i < runs; i++) {
      for (const r of runtimes) {
        run.get(r)!.push(await timeCtr(c, ["run", "--rm", "--runtime", r, BUSYBOX_REF, `lat-${tag(r)}-${i}`, "true"]));
      }
    }
    if (opts.exec === false) return { run, exec };
    const ids = runtimes.map((r) => `exec-${tag(r)}`);
    try {
      for (const [k, r] of runtimes.entries()) {
        await runDetached(c, r, ids[k]!, ["sleep", "3600"]);
        await timeCtr(c, ["task", "exec", "--exec-id", "warm", ids[k]!, "true"]);
      }
      for (let i = 0; i < runs; i++) {
        for (const [k, r] of runtimes.entries()) {
          exec.get(r)!.push(await timeCtr(c, ["task", "exec", "--exec-id", `e${i}`, ids[k]!, "true"]));
        }
      }
    } finally {
      for (const id of ids) await remove(c, id).catch((e: Error) => console.error(e.message));
    }
    return { run, exec };
  } finally {
    await c.stop();
  }
}

async function main(): Promise<void> {
  const runs = Number(arg("runs", "20"));
  const rows: (string | number)[][] = [];
  const runtimes: string[] = [...RUNTIMES, ...(flag("also") ? [arg("also", "")] : [])];
  const name = (r: string): string => (r.startsWith("/") ? `\`${r}\`` : label(r));
  for (const v of versions("2.1,1.6")) {
    const { run, exec } = await measureLatency(v, runs, runtimes);
    for (const [what, m] of [["ctr run --rm … true", run], ["ctr task exec … true", exec]] as const) {
      const goMed = quantile(m.get(RUNC)!, 0.5);
      for (const r of runtimes) {
        const xs = m.get(r)!;
        rows.push([v, what, name(r), xs.length, fmt(quantile(xs, 0.5), 0), fmt(quantile(xs, 0.9), 0), fmt(Math.min(...xs), 0),
          fmt(quantile(xs, 0.5) / goMed, 2)]);
      }
    }
  }
  record("Operation latency", `\`node dist/bench/latency.js ${process.argv.slice(2).join(" ")}\` (${stamp()}). ` +
    "Wall time of the ctr command (includes ctr's own startup, ~15-25 ms); runs of both runtimes interleaved; " +
    "ratio = median ours / median runc-v2.\n\n" +
    table(["containerd", "operation", "shim", "runs", "median ms", "p90 ms", "min ms", "ratio"], rows));
}

if (isMain(import.meta.url)) await main();
