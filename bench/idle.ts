// Idle CPU: one `ctr run -d … sleep` per runtime on one containerd, left alone; the CPU time its shim daemon
// takes over a window (ms of CPU per s of wall), ours vs containerd-shim-runc-v2, both sampled in the same
// window. CPU time is /proc/<pid>/task/*/schedstat (ns resolution; /proc/<pid>/stat counts 10 ms ticks, too
// coarse for a 0.1 ms/s target over 60 s, but used when a thread ends in the window and takes its schedstat
// along). The window starts `settle` ms after both containers run (the start's own work, GC after it).
// Run as root after the build:
//   node dist/bench/idle.js [--seconds 60] [--settle 5000] [--versions 2.1,1.6]
// bench/all.ts calls measureIdle().
import { setTimeout as sleep } from "node:timers/promises";
import { readdirSync } from "node:fs";
import {
  OURS, RUNTIMES, alive, arg, containerd, cpuMsOf, cpuOf, fmt, isMain, label, load, runDetached, shimPid, stamp, table, versions,
  type ContainerdVersion,
} from "./lib.js";

/** ms of CPU per s of wall of each runtime's shim daemon serving one idle container, over `seconds`. */
export async function measureIdle(v: ContainerdVersion, seconds: number, settleMs: number): Promise<Map<string, number>> {
  const c = await containerd(v, {}, `bench-${process.pid}-idle${v.replace(".", "")}`); // versions run at once
  try {
    const pids = new Map<string, number>();
    for (const r of RUNTIMES) {
      const id = `idle-${r === OURS ? "ts" : "go"}`;
      await runDetached(c, r, id, ["sleep", "3600"]);
      pids.set(r, await shimPid(c, id));
    }
    await sleep(settleMs);
    const tids = (pid: number): string[] => readdirSync(`/proc/${pid}/task`);
    const before = new Map([...pids].map(([r, pid]) => [r, { ms: cpuMsOf(pid), ticks: cpuOf(pid) / 1000, tids: tids(pid) }]));
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const wall = (performance.now() - t0) / 1000;
    const out = new Map<string, number>();
    for (const [r, pid] of pids) {
      const ms = cpuMsOf(pid);
      const ticks = cpuOf(pid) / 1000;
      if (!alive(pid)) throw new Error(`${label(r)} shim ${pid} exited during the idle window`);
      const b = before.get(r)!;
      const now = new Set(tids(pid));
      if (b.tids.every((t) => now.has(t))) out.set(r, (ms - b.ms) / wall);
      else { // an ended thread took its schedstat time along; /proc/<pid>/stat keeps it, in 10 ms ticks
        console.error(`idle: ${label(r)} shim ${pid}: a thread ended during the window; using /proc/${pid}/stat (10 ms ticks)`);
        out.set(r, (ticks - b.ticks) / wall);
      }
    }
    return out;
  } finally {
    await c.stop();
  }
}

async function main(): Promise<void> {
  const seconds = Number(arg("seconds", "60"));
  const settle = Number(arg("settle", "5000"));
  const vs = versions("2.1,1.6");
  const began = `${stamp()}, load ${load()}`;
  const all = await Promise.all(vs.map((v) => measureIdle(v, seconds, settle))); // same window on every version
  const rows = vs.flatMap((v, k) => RUNTIMES.map((r) => [v, label(r), fmt(all[k]!.get(r)!, 3)]));
  process.stdout.write(`\n\`node dist/bench/idle.js ${process.argv.slice(2).join(" ")}\` (${began}; load ${load()} at the end). ` +
    `One idle \`sleep\` container per runtime, ${seconds} s window after ${settle} ms.\n\n` + table(["containerd", "shim", "CPU ms/s"], rows));
}

if (isMain(import.meta.url)) await main();
