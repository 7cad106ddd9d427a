// stdout throughput: `ctr run --rm busybox id dd if=/dev/zero bs=1M count=N` with ctr's stdout on /dev/null;
// the bytes go container -> FIFO -> shim copy -> FIFO -> ctr. Run as root after the build:
//   node dist/bench/throughput.js [--mib 256] [--runs 3] [--versions 2.1,1.6] [--runtime node,bun] [--write]
import {
  OURS, RUNC, RUNTIMES as LISTED, BUSYBOX_REF, containerd, ctrCommand, fmt, label, quantile, stamp, table, versions, arg, record, runToNull,
  type Containerd, jsRuntimes, isBun, bunTag,
} from "./lib.js";

/** Wall ms of one run moving `mib` MiB to ctr's stdout. */
async function once(c: Containerd, runtime: string, id: string, mib: number): Promise<number> {
  const [cmd, args] = ctrCommand(c, ["run", "--rm", "--runtime", runtime, BUSYBOX_REF, id,
    "dd", "if=/dev/zero", "bs=1048576", `count=${mib}`]);
  const r = await runToNull(cmd, args, process.env);
  if (r.code !== 0) throw new Error(`${id}: ctr exited ${r.code}: ${r.stderr}\n${c.logTail(15)}`);
  if (!/(\d+)\+0 records out/.test(r.stderr) || !r.stderr.includes(`${mib}+0 records out`)) {
    throw new Error(`${id}: dd did not report ${mib} records: ${r.stderr}`);
  }
  return r.ms;
}

async function main(): Promise<void> {
  const mib = Number(arg("mib", "256"));
  const runs = Number(arg("runs", "3"));
  const rows: (string | number)[][] = [];
  const RUNTIMES = [...LISTED, ...jsRuntimes()];
  for (const v of versions("2.1,1.6")) {
    const c = await containerd(v);
    try {
      // Baseline: the same run with 0 bytes, to subtract container start/stop.
      const base = new Map<string, number[]>(RUNTIMES.map((r) => [r, []]));
      const full = new Map<string, number[]>(RUNTIMES.map((r) => [r, []]));
      for (let i = 0; i < runs; i++) {
        for (const r of RUNTIMES) {
          const tag = r === OURS ? "ts" : isBun(r) ? bunTag(r) : "go";
          base.get(r)!.push(await once(c, r, `tp0-${tag}-${i}`, 0));
          full.get(r)!.push(await once(c, r, `tp-${tag}-${i}`, mib));
        }
      }
      const rate = (r: string): number => mib / ((quantile(full.get(r)!, 0.5) - quantile(base.get(r)!, 0.5)) / 1000);
      for (const r of RUNTIMES) {
        rows.push([v, label(r), mib, runs, fmt(quantile(full.get(r)!, 0.5), 0), fmt(quantile(base.get(r)!, 0.5), 0),
          fmt(mib / (quantile(full.get(r)!, 0.5) / 1000), 0), fmt(rate(r), 0), fmt(rate(r) / rate(RUNC), 2)]);
      }
    } finally {
      await c.stop();
    }
  }
  record("stdout throughput", `\`node dist/bench/throughput.js ${process.argv.slice(2).join(" ")}\` (${stamp()}). ` +
    "`ctr run --rm` of `dd if=/dev/zero bs=1M count=N` (stderr carries dd's report), ctr's stdout on /dev/null; " +
    "medians; net = MiB / (median wall − median wall of the same run with count=0); ratio on net MiB/s (ours / runc-v2). " +
    "dd writes through the shim's copy loop and ctr's FIFO reader, so ctr's Go copy is part of both numbers.\n\n" +
    table(["containerd", "shim", "MiB", "runs", "median wall ms", "wall ms at 0 MiB", "gross MiB/s", "net MiB/s", "ratio net"], rows));
}

await main();
