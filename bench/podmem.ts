// Memory per pod: N idle CRI pods (podsandbox mode, host network) of one busybox sleeper each, per runtime;
// the sum of the PSS of every shim daemon serving them, divided by N. Ours runs once with one daemon per pod
// (the default grouping) and once with SHIM_TS_GROUPING=namespace (one daemon for all N, on its own containerd,
// since the variable reaches every `start`). Run as root after the build:
//   node dist/bench/podmem.js [--n 20] [--versions 2.1,1.6] [--warm] [--write]
// --warm: ours with SHIM_TS_WARM=1; its idle spare counts in the one-daemon-per-pod total.
// bench/all.ts calls measurePodMemory().
import { waitFor } from "../test/helpers/wait.js";
import { HANDLER, criContainerd, daemons, noDaemons, runPod, stopCri, teardownPod, type CriBench, type Handler, type Pod } from "./cri.js";
import { OURS, RUNC, WARM, arg, fmt, idleSpares, isMain, label, memoryOf, record, stamp, table, versions, type ContainerdVersion } from "./lib.js";

export interface PodMemory {
  /** Daemons serving the N pods, and their summed PSS / RSS in KiB. */
  daemons: number;
  pss: number;
  rss: number;
}

export const VARIANTS = ["ours, one daemon per pod", "runc-v2", "ours, SHIM_TS_GROUPING=namespace"] as const;
export type Variant = (typeof VARIANTS)[number];

/**
 * N pods of `runtime`, then the PSS of every daemon serving them. With `spare` (ours under `--warm`, one daemon
 * per pod) the idle warm spare that the last `start` left counts too: it is the price of the next pod's start.
 */
async function sample(b: CriBench, runtime: string, handler: Handler, n: number, want: number, spare = false): Promise<PodMemory> {
  const pods: Pod[] = [];
  try {
    for (let i = 0; i < n; i++) pods.push(await runPod(b, handler, `m-${runtime === OURS ? "ts" : "go"}-${i}`, 1));
    if (spare) {
      await waitFor(() => idleSpares(daemons(b, runtime)).length === 1, { timeoutMs: 10_000, intervalMs: 20, what: "the idle warm spare" });
    }
    const pids = daemons(b, runtime);
    const serving = pids.length - idleSpares(pids).length;
    if (serving !== want) throw new Error(`${n} pods of ${runtime}: expected ${want} shim daemons, found ${serving}`);
    const m = pids.map(memoryOf);
    return { daemons: pids.length, pss: m.reduce((a, x) => a + x.pss, 0), rss: m.reduce((a, x) => a + x.rss, 0) };
  } finally {
    for (const p of pods) await teardownPod(b, p).catch((e: Error) => console.error(e.message));
    await noDaemons(b).catch((e: Error) => console.error(e.message));
  }
}

/** The three variants on containerd `v`, `n` pods each, one variant at a time. */
export async function measurePodMemory(v: ContainerdVersion, n: number): Promise<Map<Variant, PodMemory>> {
  const out = new Map<Variant, PodMemory>();
  let b = await criContainerd(v);
  try {
    out.set("ours, one daemon per pod", await sample(b, OURS, HANDLER.ours, n, n, WARM));
    out.set("runc-v2", await sample(b, RUNC, HANDLER.runc, n, n));
  } finally {
    await stopCri(b);
  }
  b = await criContainerd(v, { env: { SHIM_TS_GROUPING: "namespace" } });
  try {
    out.set("ours, SHIM_TS_GROUPING=namespace", await sample(b, OURS, HANDLER.ours, n, 1));
  } finally {
    await stopCri(b);
  }
  return out;
}

async function main(): Promise<void> {
  const n = Number(arg("n", "20"));
  const rows: (string | number)[][] = [];
  const mb = (kib: number): string => fmt(kib / 1024, 1);
  for (const v of versions("2.1,1.6")) {
    const m = await measurePodMemory(v, n);
    const go = m.get("runc-v2")!;
    for (const [name, x] of m) {
      rows.push([v, name === "runc-v2" ? label(RUNC) : name, n, x.daemons, mb(x.pss), mb(x.pss / n), mb(x.rss / n), fmt(x.pss / go.pss, 2)]);
    }
  }
  record("Memory per pod", `\`node dist/bench/podmem.js ${process.argv.slice(2).join(" ")}\` (${stamp()}). ` +
    `${n} idle CRI pods (host network, one busybox sleeper each) per variant, sampled once all were RUNNING; ` +
    "PSS/RSS from /proc/<pid>/smaps_rollup of every shim daemon serving them; ratio = total PSS ours / runc-v2.\n\n" +
    table(["containerd", "shim", "pods", "daemons", "total PSS MiB", "PSS per pod MiB", "RSS per pod MiB", "ratio PSS"], rows));
}

if (isMain(import.meta.url)) await main();
