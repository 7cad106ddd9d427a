// CRI pod start and teardown, ours vs containerd-shim-runc-v2 on the same containerd, runs interleaved:
// start = RunPodSandbox + CreateContainer + StartContainer until CRI says RUNNING; teardown = StopContainer
// (timeout 0: SIGKILL) + RemoveContainer + StopPodSandbox + RemovePodSandbox. On 2.1 ours runs in
// podsandbox mode (the default); on 1.7 ours runs in shim sandboxer mode (`sandbox_mode = "shim"`) and runc-v2,
// which has no SandboxService, in podsandbox mode. A burst: N pods started at once, until every container runs.
// With SHIM_TS_GROUPING=namespace a resident pod per runtime stays up, as on a node with pods. Run as root:
//   node dist/bench/pods.js [--runs 10] [--write]
// bench/all.ts calls measurePods().
import { HANDLER, criContainerd, noDaemons, runPod, stopCri, teardownPod, type Handler, type Pod } from "./cri.js";
import { OURS, RUNC, arg, fmt, isMain, label, quantile, record, stamp, table, type ContainerdVersion } from "./lib.js";

export interface PodTimes {
  start: Map<string, number[]>;
  teardown: Map<string, number[]>;
  /** Wall ms of each burst: `n` pods started at once until every container is RUNNING (empty without `burst`). */
  burst: Map<string, number[]>;
}

export interface PodOptions {
  /** "namespace": SHIM_TS_GROUPING=namespace, and one resident pod per runtime kept running throughout. */
  grouping?: "pod" | "namespace";
  /** After the single pods: `rounds` bursts of `n` pods per runtime, interleaved. */
  burst?: { n: number; rounds: number };
}

/** The CRI mode ours is measured in on `v`: podsandbox, or shim sandboxer on 1.7. */
export function oursMode(v: ContainerdVersion): "podsandbox" | "shim sandboxer" {
  return v === "1.7" ? "shim sandboxer" : "podsandbox";
}

/** `runs` pods per runtime (after one warm-up each) on a fresh CRI containerd `v`; ms per phase. */
export async function measurePods(v: ContainerdVersion, runs: number, opts: PodOptions = {}): Promise<PodTimes> {
  const shimMode = oursMode(v) === "shim sandboxer";
  const ns = opts.grouping === "namespace";
  const b = await criContainerd(v, { shimMode, env: ns ? { SHIM_TS_GROUPING: "namespace" } : {} });
  const handlers: [string, Handler][] = [[OURS, shimMode ? HANDLER.shimMode : HANDLER.ours], [RUNC, HANDLER.runc]];
  const times = (): Map<string, number[]> => new Map(handlers.map(([r]) => [r, []]));
  const out: PodTimes = { start: times(), teardown: times(), burst: times() };
  const tag = (runtime: string): string => (runtime === OURS ? "ts" : "go");
  const residents: Pod[] = [];
  try {
    // With namespace grouping a node has its daemon up already: a resident pod per runtime keeps one running.
    if (ns) for (const [runtime, handler] of handlers) residents.push(await runPod(b, handler, `resident-${tag(runtime)}`, 1));
    const left = ns ? handlers.length : 0; // daemons that stay between rounds
    for (let i = -1; i < runs; i++) {
      for (const [runtime, handler] of handlers) {
        const t0 = performance.now();
        const pod = await runPod(b, handler, `p-${tag(runtime)}-${i + 1}`, 1);
        const t1 = performance.now();
        await teardownPod(b, pod);
        const t2 = performance.now();
        if (i >= 0) { // run -1 warms the page cache and the snapshotter
          out.start.get(runtime)!.push(t1 - t0);
          out.teardown.get(runtime)!.push(t2 - t1);
        }
        await noDaemons(b, left); // the next pod starts with no shim left over (not timed)
      }
    }
    for (let i = 0; i < (opts.burst?.rounds ?? 0); i++) {
      for (const [runtime, handler] of handlers) {
        const names = Array.from({ length: opts.burst!.n }, (_, k) => `b-${tag(runtime)}-${i}-${k}`);
        const t0 = performance.now();
        const pods = await Promise.all(names.map((name) => runPod(b, handler, name, 1)));
        out.burst.get(runtime)!.push(performance.now() - t0);
        await Promise.all(pods.map((pod) => teardownPod(b, pod)));
        await noDaemons(b, left);
      }
    }
    return out;
  } finally {
    // Torn down like any pod: in shim sandboxer mode the pause runs under /run/containerd/runc/k8s.io, which
    // stopCri() does not empty (it belongs to every CRI containerd on the machine).
    for (const pod of residents) await teardownPod(b, pod).catch((e: Error) => console.error(`resident ${pod.id}: ${e.message}`));
    await stopCri(b);
  }
}

async function main(): Promise<void> {
  const runs = Number(arg("runs", "10"));
  const rows: (string | number)[][] = [];
  for (const v of ["2.1", "1.7"] as const) {
    const t = await measurePods(v, runs);
    for (const [phase, m] of [["start", t.start], ["teardown", t.teardown]] as const) {
      const go = quantile(m.get(RUNC)!, 0.5);
      for (const r of [OURS, RUNC]) {
        const xs = m.get(r)!;
        rows.push([v, phase, r === OURS ? `${label(r)} ${oursMode(v)}` : `${label(r)} podsandbox`, xs.length,
          fmt(quantile(xs, 0.5), 0), fmt(quantile(xs, 0.9), 0), fmt(quantile(xs, 0.5) / go, 2)]);
      }
    }
  }
  record("CRI pod start and teardown", `\`node dist/bench/pods.js ${process.argv.slice(2).join(" ")}\` (${stamp()}). ` +
    "A host-network pod with one busybox sleeper; start = RunPodSandbox + CreateContainer + StartContainer until RUNNING, " +
    "teardown = StopContainer + RemoveContainer + StopPodSandbox + RemovePodSandbox; runtimes interleaved; " +
    "ratio = median ours / median runc-v2.\n\n" +
    table(["containerd", "phase", "shim", "runs", "median ms", "p90 ms", "ratio"], rows));
}

if (isMain(import.meta.url)) await main();
