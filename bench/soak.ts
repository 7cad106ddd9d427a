// Soak: the churn loop of test/e2e/churn-load.test.ts for a long time (issue 10, item 4), outside CI. Run as
// root after the build:
//   node dist/bench/soak.js [--minutes 30] [--pods 20] [--containers 5] [--parallel 4] [--poll-ms 10]
//                           [--runtimes io.containerd.ts.v2,io.containerd.runc.v2] [--version 2.1] [--write]
// Per runtime, a private containerd with CRI (ours with SHIM_TS_GROUPING=namespace: one daemon for every pod),
// an anchor pod that runs all along, and cycles of `--pods` pods x `--containers` containers started, stopped
// and removed until `--minutes` are up, while CRI ContainerStatus and the shim's State are polled for the
// anchor. After every cycle: the persistent daemon's (the anchor's) fds and RSS/PSS, containerd's fds and RSS,
// zombies, and what is left on the host. Prints a table of samples (first, every tenth, last) and a summary.
// Run it alone on the machine: the e2e harness' cleanup of another containerd force-deletes every runc
// container in namespace k8s.io and kills the processes in cgroup /k8s.io, the soak's included.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { startContainerd, zombiesOf, type Containerd, type ContainerdVersion } from "../test/helpers/containerd.js";
import { CRI_NS, CriClient, criTaskPids } from "../test/helpers/cri.js";
import { hostLeftovers, runCycle, startPod, stopPod } from "../test/helpers/churn.js";
import { ShimClient } from "../test/helpers/events.js";
import { fdCount, memKiB, stats } from "../test/helpers/load.js";
import { arg, fmt, label, OURS, record, stamp, table } from "./lib.js";

const MINUTES = Number(arg("minutes", "30"));
const PODS = Number(arg("pods", "20"));
const CONTAINERS = Number(arg("containers", "5"));
const PARALLEL = Number(arg("parallel", "4"));
const POLL_MS = Number(arg("poll-ms", "10"));
const VERSION = arg("version", "2.1") as ContainerdVersion;
const RUNTIMES = arg("runtimes", `${OURS},io.containerd.runc.v2`).split(",");

interface Sample { cycle: number; atS: number; cycleMs: number; daemonFds: number; rssMiB: number; pssMiB: number; ctrdFds: number; ctrdRssMiB: number; left: number; zombies: number }

function ppid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

function socketOf(c: Containerd, id: string): string {
  const bundle = path.join(c.state, "io.containerd.runtime.v2.task", CRI_NS, id);
  const raw = existsSync(path.join(bundle, "address")) ? readFileSync(path.join(bundle, "address"), "utf8")
    : (JSON.parse(readFileSync(path.join(bundle, "bootstrap.json"), "utf8")) as { address: string }).address;
  return raw.trim().replace(/^unix:\/\//, "");
}

async function soak(runtime: string): Promise<{ samples: Sample[]; errors: string[]; polls: { cri: number[]; shim: number[]; failed: number } }> {
  const env: Record<string, string> = runtime === OURS ? { SHIM_TS_GROUPING: "namespace" } : {};
  const c = await startContainerd(VERSION, { cri: true, namespace: CRI_NS, images: ["busybox", "pause"], runtime, env });
  const cc = await CriClient.connect(c.address);
  const samples: Sample[] = [];
  const errors: string[] = [];
  const polls = { cri: [] as number[], shim: [] as number[], failed: 0 };
  try {
    const anchor = await startPod(c, cc, "anchor", 1);
    const daemon = ppid((await criTaskPids(c)).get(anchor.apps[0]!) ?? 0);
    const ctrd = c.pid ?? 0;
    const shim = await ShimClient.connect(socketOf(c, anchor.id));
    let polling = true;
    const poll = async (into: number[], call: () => Promise<unknown>): Promise<void> => {
      while (polling) {
        const t0 = performance.now();
        try {
          await call();
          if (into.length < 1_000_000) into.push(performance.now() - t0);
        } catch (err) {
          if (polls.failed++ < 10) errors.push(`poll: ${(err as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    };
    const pollers = [poll(polls.cri, () => cc.containerStatus(anchor.apps[0]!)), poll(polls.shim, () => shim.state(anchor.apps[0]!))];
    const t0 = performance.now();
    try {
      for (let k = 0; k < 2 || performance.now() - t0 < MINUTES * 60_000; k++) {
        const c0 = performance.now();
        const run = await runCycle(c, cc, `s${k}`, PODS, CONTAINERS, PARALLEL);
        errors.push(...run.errors.slice(0, 5).map((e) => `cycle ${k}: ${e}`));
        if (!existsSync(`/proc/${daemon}`)) {
          // Seen when another test run on the machine cleaned up namespace k8s.io (the harness' stop()).
          errors.push(`cycle ${k}: the anchor's shim daemon ${daemon} is gone; stopping`);
          break;
        }
        const found = await hostLeftovers(c, [anchor.id, ...anchor.apps], run.podIds);
        const left = Object.values(found).reduce((a, b) => a + b, 0);
        if (left > 0) errors.push(`cycle ${k}: left on the host right after the cycle: ${JSON.stringify(found)}`);
        const m = memKiB(daemon);
        samples.push({
          cycle: k, atS: Math.round((performance.now() - t0) / 1000), cycleMs: Math.round(performance.now() - c0),
          daemonFds: fdCount(daemon), rssMiB: m.rss / 1024, pssMiB: m.pss / 1024, ctrdFds: fdCount(ctrd),
          ctrdRssMiB: memKiB(ctrd).rss / 1024, left, zombies: zombiesOf([daemon, ctrd]).length,
        });
        process.stderr.write(`${label(runtime)} cycle ${k}: ${JSON.stringify(samples[samples.length - 1])}\n`);
      }
    } finally {
      polling = false;
      await Promise.all(pollers);
      shim.close();
    }
    await stopPod(cc, anchor).catch((err: Error) => errors.push(`removing the anchor: ${err.message}`));
  } finally {
    cc.close();
    await c.stop();
  }
  return { samples, errors, polls };
}

const sections: string[] = [];
for (const runtime of RUNTIMES) {
  const { samples, errors, polls } = await soak(runtime);
  const pick = samples.filter((s, i) => i === 0 || i === samples.length - 1 || i % 10 === 0);
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  const tasks = samples.length * PODS * (CONTAINERS + 1);
  sections.push(`### ${label(runtime)}${runtime === OURS ? ", SHIM_TS_GROUPING=namespace" : ""}\n\n` + table(
    ["cycle", "at s", "cycle ms", "daemon fds", "daemon RSS MiB", "daemon PSS MiB", "containerd fds", "containerd RSS MiB", "left on host", "zombies"],
    pick.map((s) => [s.cycle, s.atS, s.cycleMs, s.daemonFds, fmt(s.rssMiB), fmt(s.pssMiB), s.ctrdFds, fmt(s.ctrdRssMiB), s.left, s.zombies]),
  ) + `\n${samples.length} cycles, ${tasks} tasks (pods + containers) in ${last.atS} s; daemon fds ${first.daemonFds} -> ${last.daemonFds}, ` +
    `RSS ${fmt(first.rssMiB)} -> ${fmt(last.rssMiB)} MiB (${fmt((last.rssMiB / first.rssMiB - 1) * 100)} %), containerd fds ${first.ctrdFds} -> ${last.ctrdFds}; ` +
    `polls: CRI ContainerStatus ${JSON.stringify(stats(polls.cri))} ms, shim State ${JSON.stringify(stats(polls.shim))} ms, ${polls.failed} failed; ` +
    `${errors.length === 0 ? "no failed call" : `failures: ${errors.join("; ")}`}\n`);
}
record(`Soak (${MINUTES} min, ${PODS} pods x ${CONTAINERS} containers per cycle, containerd ${VERSION})`, `${stamp()}\n\n${sections.join("\n")}`);
