// Terminals: `ctr task exec -t` output throughput (a running busybox, `dd if=/dev/zero bs=1M count=N` on the
// exec's pty; ctr under `script` so that its stdin is a terminal, its stdout on /dev/null), the
// wall time of `ctr run -t --rm … true`, and a daemon's idle CPU with one idle container. Run as root after
// the build:
//   node dist/bench/tty.js [--mib 64] [--runs 3] [--versions 2.1] [--runtime node,bun] [--idle 60]
// The bytes go exec pty -> shim copy -> FIFO -> ctr -> /dev/null, the same path for every runtime. Shim CPU: the
// runtime's shim process (all threads, schedstat) per exec, median at N MiB minus median at 0 MiB. bench/all.ts
// calls measureTtyExec() for its "tty-exec" row.
import { OURS, RUNTIMES, BUSYBOX_REF, containerd, ctrCommand, fmt, label, quantile, versions, arg, runToNull, runDetached,
  remove, shimPid, cpuMsOf, jsRuntimes, isBun, bunTag, isMain, type Containerd, type ContainerdVersion } from "./lib.js";

/**
 * `ctr args` with a pty of its own on stdin (util-linux `script`; ctr -t wants a terminal) and its stdout on
 * /dev/null, so the output does not also cross a second pty and `script`; wall ms. Throws unless it exits 0.
 */
async function underPty(c: Containerd, args: string[]): Promise<{ ms: number; stderr: string }> {
  const [cmd, argv] = ctrCommand(c, args);
  const line = `${[cmd, ...argv].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ")} >/dev/null`;
  const r = await runToNull("script", ["-qefc", line, "/dev/null"], process.env);
  if (r.code !== 0) throw new Error(`ctr ${args.join(" ")} under a pty exited ${r.code}: ${r.stderr}\n${c.logTail(15)}`);
  return r;
}

function tag(r: string): string {
  return r === OURS ? "ts" : isBun(r) ? bunTag(r) : "go";
}

export interface TtyExec {
  /** Median wall ms per runtime with `mib` MiB, and with 0 MiB. */
  full: Map<string, number>;
  base: Map<string, number>;
  /** Net MiB/s per runtime: mib / (median full − median base). */
  net: Map<string, number>;
  /** CPU ms of the runtime's shim process (all threads) per exec: median at `mib` MiB minus median at 0 MiB. */
  cpu: Map<string, number>;
}

/** `runs` execs of each size per runtime, runtimes interleaved, each in a running container of its own. */
export async function measureTtyExec(v: ContainerdVersion, mib: number, runs: number, runtimes: readonly string[] = RUNTIMES): Promise<TtyExec> {
  const c = await containerd(v);
  const ids = runtimes.map((r) => `tty-${tag(r)}`);
  try {
    const pids: number[] = [];
    for (const [i, r] of runtimes.entries()) {
      await runDetached(c, r, ids[i]!, ["sleep", "100000"]);
      pids.push(await shimPid(c, ids[i]!));
    }
    const full = new Map<string, number[]>(runtimes.map((r) => [r, []]));
    const base = new Map<string, number[]>(runtimes.map((r) => [r, []]));
    const cpuFull = new Map<string, number[]>(runtimes.map((r) => [r, []]));
    const cpuBase = new Map<string, number[]>(runtimes.map((r) => [r, []]));
    const exec = async (i: number, n: number, mb: number, cpu: number[]): Promise<number> => {
      const before = cpuMsOf(pids[i]!);
      const { ms } = await underPty(c, ["task", "exec", "-t", "--exec-id", `x${n}-${mb}`, ids[i]!, "dd", "if=/dev/zero", "bs=1048576", `count=${mb}`]);
      cpu.push(cpuMsOf(pids[i]!) - before);
      return ms;
    };
    for (let n = 0; n < runs; n++) {
      for (const [i, r] of runtimes.entries()) {
        base.get(r)!.push(await exec(i, n, 0, cpuBase.get(r)!));
        full.get(r)!.push(await exec(i, n, mib, cpuFull.get(r)!));
      }
    }
    const med = (m: Map<string, number[]>): Map<string, number> => new Map([...m].map(([r, xs]) => [r, quantile(xs, 0.5)]));
    const f = med(full);
    const b = med(base);
    const cf = med(cpuFull);
    const cb = med(cpuBase);
    return {
      full: f,
      base: b,
      net: new Map(runtimes.map((r) => [r, mib / ((f.get(r)! - b.get(r)!) / 1000)])),
      cpu: new Map(runtimes.map((r) => [r, cf.get(r)! - cb.get(r)!])),
    };
  } finally {
    for (const id of ids) await remove(c, id).catch(() => {});
    await c.stop();
  }
}

/** Median wall ms of `ctr run -t --rm … true` per runtime, runtimes interleaved. */
async function ttyRun(c: Containerd, runtimes: readonly string[], runs: number): Promise<Map<string, number>> {
  const ms = new Map<string, number[]>(runtimes.map((r) => [r, []]));
  for (let n = 0; n < runs; n++) {
    for (const r of runtimes) ms.get(r)!.push((await underPty(c, ["run", "-t", "--rm", "--runtime", r, BUSYBOX_REF, `ttyrun-${tag(r)}-${n}`, "true"])).ms);
  }
  return new Map([...ms].map(([r, xs]) => [r, quantile(xs, 0.5)]));
}

/** CPU ms/s of each runtime's daemon over `seconds`, one idle container each (all measured in the same window). */
async function idleCpu(c: Containerd, runtimes: readonly string[], seconds: number): Promise<Map<string, number>> {
  const pids = new Map<string, number>();
  for (const r of runtimes) {
    await runDetached(c, r, `idle-${tag(r)}`, ["sleep", "100000"]);
    pids.set(r, await shimPid(c, `idle-${tag(r)}`));
  }
  await new Promise((resolve) => setTimeout(resolve, 3000)); // let the starts settle
  const before = new Map([...pids].map(([r, p]) => [r, cpuMsOf(p)]));
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const out = new Map([...pids].map(([r, p]) => [r, (cpuMsOf(p) - before.get(r)!) / seconds]));
  for (const r of runtimes) await remove(c, `idle-${tag(r)}`);
  return out;
}

async function main(): Promise<void> {
  const mib = Number(arg("mib", "64"));
  const runs = Number(arg("runs", "3"));
  const idle = Number(arg("idle", "60"));
  const runtimes = [...RUNTIMES, ...jsRuntimes()];
  for (const v of versions("2.1")) {
    const t = await measureTtyExec(v, mib, runs, runtimes);
    const c = await containerd(v);
    let run: Map<string, number>;
    let cpu: Map<string, number>;
    try {
      run = await ttyRun(c, runtimes, runs);
      cpu = idle > 0 ? await idleCpu(c, runtimes, idle) : new Map();
    } finally {
      await c.stop();
    }
    for (const r of runtimes) {
      process.stdout.write(`${v} ${label(r)}: exec -t ${mib} MiB ${fmt(t.net.get(r)!, 0)} MiB/s net (${fmt(t.full.get(r)!, 0)} ms, ` +
        `0 MiB ${fmt(t.base.get(r)!, 0)} ms), shim CPU ${fmt(t.cpu.get(r)!, 0)} ms net; run -t --rm true ${fmt(run.get(r)!, 0)} ms` +
        `${cpu.has(r) ? `; idle daemon ${fmt(cpu.get(r)!, 2)} ms CPU/s over ${idle} s` : ""}\n`);
    }
  }
}

if (isMain(import.meta.url)) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
