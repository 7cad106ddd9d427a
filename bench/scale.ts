// Scale: one CRI pod (podsandbox mode) grown to N busybox sleepers, then E execs (ExecSync `true`, spread over
// the containers, C at a time), per runtime on one containerd. The PSS of the pod's one shim daemon is sampled
// with the pause container alone and after every N/10 containers, right before the execs and after them (once
// the daemon has been idle for --settle ms). Run as root after the build:
//   node dist/bench/scale.js [--n 100] [--execs 1000] [--rounds 1] [--concurrency 4] [--settle 3000] [--versions 2.1] [--write]
// --rounds R: R rounds of E execs, PSS after each (does it keep growing, or level off?).
// bench/all.ts calls measureScale().
import { setTimeout as delay } from "node:timers/promises";
import { HANDLER, addContainer, criContainerd, daemons, noDaemons, podDaemons, runPod, stopCri, teardownPod, type CriBench, type Handler } from "./cri.js";
import { OURS, RUNC, arg, fmt, isMain, label, memoryOf, record, stamp, table, versions, type ContainerdVersion } from "./lib.js";

export interface Scale {
  /** [containers, PSS KiB] of the pod's daemon: 0 = pause container only. */
  growth: [number, number][];
  /** PSS KiB right before the execs, and after them plus the settle time. */
  beforeExecs: number;
  afterExecs: number;
  /** PSS KiB after each round of execs (the first one is afterExecs). */
  rounds: number[];
  execs: number;
  execMs: number;
}

/** Least-squares slope of y over x. */
export function slope(pts: [number, number][]): number {
  const n = pts.length;
  const mx = pts.reduce((a, [x]) => a + x, 0) / n;
  const my = pts.reduce((a, [, y]) => a + y, 0) / n;
  const sxy = pts.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const sxx = pts.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return sxx === 0 ? NaN : sxy / sxx;
}

/**
 * Growth per container over the second half of the containers divided by that over the first half (1 = linear):
 * least-squares slopes of the samples in each half, since single samples carry the GC's sawtooth.
 */
export function secondHalfOverFirst(growth: [number, number][]): number {
  const mid = growth[growth.length - 1]![0] / 2;
  return slope(growth.filter(([x]) => x >= mid)) / slope(growth.filter(([x]) => x <= mid));
}

async function one(b: CriBench, runtime: string, handler: Handler, n: number, execs: number, conc: number, settleMs: number,
  nRounds: number): Promise<Scale> {
  const pod = await runPod(b, handler, `scale-${runtime === OURS ? "ts" : "go"}`, 0);
  try {
    const pss = (): number => {
      const d = runtime === OURS ? podDaemons(b) : daemons(b, runtime); // not an idle warm spare (--warm)
      if (d.length !== 1) throw new Error(`one pod of ${runtime}: expected 1 shim daemon, found ${d.length}`);
      return memoryOf(d[0]!).pss;
    };
    const step = Math.max(1, Math.round(n / 10));
    const growth: [number, number][] = [[0, pss()]];
    for (let i = 0; i < n; i++) {
      await addContainer(b, pod, `c${i}`);
      if ((i + 1) % step === 0 || i === n - 1) growth.push([i + 1, pss()]);
    }
    await delay(settleMs); // same idle time before and after the execs
    const beforeExecs = pss();
    const rounds: number[] = [];
    const t0 = performance.now();
    for (let round = 0; round < nRounds; round++) {
      let next = 0;
      await Promise.all(Array.from({ length: conc }, async () => {
        for (let k = next++; k < execs; k = next++) {
          const r = await b.client.execSync(pod.containers[k % pod.containers.length]!, ["true"]);
          if (r.exitCode !== 0) throw new Error(`exec ${k}: exit ${r.exitCode}: ${r.stderr}`);
        }
      }));
      await delay(settleMs);
      rounds.push(pss());
    }
    const execMs = performance.now() - t0 - nRounds * settleMs;
    return { growth, beforeExecs, afterExecs: rounds[0]!, rounds, execs, execMs: execMs / nRounds };
  } finally {
    await teardownPod(b, pod).catch((e: Error) => console.error(e.message));
    await noDaemons(b).catch((e: Error) => console.error(e.message));
  }
}

/** Both runtimes, one after the other, on one CRI containerd `v`. */
export async function measureScale(v: ContainerdVersion, n: number, execs: number, conc = 4, settleMs = 3000, nRounds = 1): Promise<Map<string, Scale>> {
  const b = await criContainerd(v);
  try {
    const out = new Map<string, Scale>();
    out.set(OURS, await one(b, OURS, HANDLER.ours, n, execs, conc, settleMs, nRounds));
    out.set(RUNC, await one(b, RUNC, HANDLER.runc, n, execs, conc, settleMs, nRounds));
    return out;
  } finally {
    await stopCri(b);
  }
}

async function main(): Promise<void> {
  const n = Number(arg("n", "100"));
  const execs = Number(arg("execs", "1000"));
  const conc = Number(arg("concurrency", "4"));
  const settle = Number(arg("settle", "3000"));
  const nRounds = Number(arg("rounds", "1"));
  const rows: (string | number)[][] = [];
  const mb = (kib: number): string => fmt(kib / 1024, 1);
  for (const v of versions("2.1")) {
    for (const [r, s] of await measureScale(v, n, execs, conc, settle, nRounds)) {
      rows.push([v, label(r), n, mb(s.growth[0]![1]), mb(s.growth[s.growth.length - 1]![1]), fmt(slope(s.growth), 0),
        fmt(secondHalfOverFirst(s.growth), 2), s.growth.map(([, y]) => fmt(y / 1024, 1)).join(" "), mb(s.beforeExecs), s.rounds.map((x) => fmt(x / 1024, 1)).join(" "),
        `${fmt((s.afterExecs / s.beforeExecs - 1) * 100, 1)} %`, fmt(s.execs / (s.execMs / 1000), 0)]);
    }
  }
  record("Scale: one pod, many containers, many execs", `\`node dist/bench/scale.js ${process.argv.slice(2).join(" ")}\` (${stamp()}). ` +
    `One pod grown to ${n} sleepers, then ${execs} ExecSync \`true\` (${conc} at a time); PSS of the pod's shim daemon; ` +
    `slope = least squares over the samples; linearity = slope over the second half / slope over the first half; ` +
    `before/after execs sampled after ${settle} ms idle.\n\n` +
    table(["containerd", "shim", "containers", "PSS pause only MiB", `PSS at ${n} MiB`, "KiB per container", "linearity",
      "PSS samples MiB", "PSS before execs MiB", "after each round MiB", "change", "execs/s"], rows));
}

if (isMain(import.meta.url)) await main();
