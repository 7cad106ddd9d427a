// Latency of whole operations through containerd: `ctr run --rm busybox id true` and `ctr task exec ... true`
// on a running container, ours vs containerd-shim-runc-v2, interleaved run by run. Run as root after the build:
//   node dist/bench/latency.js [--runs 20] [--versions 2.1,1.6] [--also /abs/path/containerd-shim-x-v2] [--runtime node,bun] [--write]
// --runtime node,bun adds ours on Bun (lib.ts jsRuntimes).
// --also adds a third runtime given as an absolute shim path (e.g. an older build of ours, for before/after).
import {
  OURS, RUNC, RUNTIMES, BUSYBOX_REF, containerd, fmt, label, quantile, remove, runDetached, stamp, table, timeCtr, versions, arg,
  flag, record, jsRuntimes, isBun, bunTag,
} from "./lib.js";

async function main(): Promise<void> {
  const runs = Number(arg("runs", "20"));
  const rows: (string | number)[][] = [];
  const runtimes: string[] = [...RUNTIMES, ...jsRuntimes(), ...(flag("also") ? [arg("also", "")] : [])];
  const name = (r: string): string => (r.startsWith("/") && !isBun(r) ? `\`${r}\`` : label(r));
  const tag = (r: string): string => (r === OURS ? "ts" : r === RUNC ? "go" : isBun(r) ? bunTag(r) : "also");
  for (const v of versions("2.1,1.6")) {
    const c = await containerd(v);
    try {
      const run = new Map<string, number[]>(runtimes.map((r) => [r, []]));
      const exec = new Map<string, number[]>(runtimes.map((r) => [r, []]));
      // Warm-up: one of each (page cache, image unpack, first shim binary load).
      for (const r of runtimes) await timeCtr(c, ["run", "--rm", "--runtime", r, BUSYBOX_REF, `warm-${tag(r)}`, "true"]);
      for (let i = 0; i < runs; i++) {
        for (const r of runtimes) {
          run.get(r)!.push(await timeCtr(c, ["run", "--rm", "--runtime", r, BUSYBOX_REF, `lat-${tag(r)}-${i}`, "true"]));
        }
      }
      for (const r of runtimes) {
        const id = `exec-${tag(r)}`;
        await runDetached(c, r, id, ["sleep", "3600"]);
        try {
          await timeCtr(c, ["task", "exec", "--exec-id", "warm", id, "true"]);
          for (let i = 0; i < runs; i++) exec.get(r)!.push(await timeCtr(c, ["task", "exec", "--exec-id", `e${i}`, id, "true"]));
        } finally {
          await remove(c, id);
        }
      }
      for (const [what, m] of [["ctr run --rm … true", run], ["ctr task exec … true", exec]] as const) {
        const goMed = quantile(m.get(RUNC)!, 0.5);
        for (const r of runtimes) {
          const xs = m.get(r)!;
          rows.push([v, what, name(r), xs.length, fmt(quantile(xs, 0.5), 0), fmt(quantile(xs, 0.9), 0), fmt(Math.min(...xs), 0),
            fmt(quantile(xs, 0.5) / goMed, 2)]);
        }
      }
    } finally {
      await c.stop();
    }
  }
  record("Operation latency", `\`node dist/bench/latency.js ${process.argv.slice(2).join(" ")}\` (${stamp()}). ` +
    "Wall time of the ctr command (includes ctr's own startup, ~15-25 ms); runs of both runtimes interleaved; " +
    "ratio = median ours / median runc-v2.\n\n" +
    table(["containerd", "operation", "shim", "runs", "median ms", "p90 ms", "min ms", "ratio"], rows));
}

await main();
