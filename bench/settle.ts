// Memory of one shim daemon before, right after and some time after a burst of State calls (8 concurrent,
// `--seconds`), to see what a daemon keeps once the work is over: the anonymous memory (heap; what one
// more pod costs, whatever the sharing of the runtime binary) and RSS; and its CPU while idling after. Ours on Node, and on Bun with
// `--runtime node,bun`. Run as root after the build:
//   node dist/bench/settle.js [--seconds 3] [--versions 2.1] [--runtime node,bun] [--write]
import { readFileSync } from "node:fs";
import { containerd as gen } from "../src/gen/task.js";
import { Client } from "../src/ttrpc/index.js";
import {
  OURS, arg, bunTag, containerd, cpuOf, fmt, isBun, jsRuntimes, label, record, remove, runDetached, shimPid, shimSocket, stamp, table, versions,
} from "./lib.js";

const T = gen.task.v2;
const AFTER_S = [5, 15, 30];

/** Rss and Anonymous of `pid` in MiB. */
function mem(pid: number): { rss: number; anon: number } {
  const roll = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const mib = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(roll)?.[1] ?? 0) / 1024;
  return { rss: mib("Rss"), anon: mib("Anonymous") };
}

async function main(): Promise<void> {
  const seconds = Number(arg("seconds", "3"));
  const rows: (string | number)[][] = [];
  for (const v of versions("2.1")) {
    const c = await containerd(v);
    try {
      for (const rt of [OURS, ...jsRuntimes()]) {
        const id = `settle-${isBun(rt) ? bunTag(rt) : "ts"}`;
        await runDetached(c, rt, id, ["sleep", "3600"]);
        try {
          const pid = await shimPid(c, id);
          const client = await Client.connect(shimSocket(c, id));
          const samples = [mem(pid)];
          const end = performance.now() + seconds * 1000;
          await Promise.all(Array.from({ length: 8 }, async () => {
            while (performance.now() < end) await client.callTyped("containerd.task.v2.Task", "State", T.StateRequest, { id }, T.StateResponse);
          }));
          client.close();
          samples.push(mem(pid));
          const cpu0 = cpuOf(pid);
          let waited = 0;
          for (const s of AFTER_S) {
            await new Promise((resolve) => setTimeout(resolve, (s - waited) * 1000));
            waited = s;
            samples.push(mem(pid));
          }
          const idleCpu = (cpuOf(pid) - cpu0) / 1000 / AFTER_S[AFTER_S.length - 1]!; // ms per s
          rows.push([v, label(rt), ...samples.map((m) => `${fmt(m.anon, 1)} / ${fmt(m.rss, 1)}`), fmt(idleCpu, 1)]);
        } finally {
          await remove(c, id);
        }
      }
    } finally {
      await c.stop();
    }
  }
  record("Memory after a burst", `\`node dist/bench/settle.js ${process.argv.slice(2).join(" ")}\` (${stamp()}). ` +
    `One \`sleep\` container per runtime; 8 concurrent State calls for ${seconds} s on its shim socket; anonymous / RSS MiB ` +
    "of the shim daemon before, right after, and after idling (nothing calls it meanwhile); the daemon's CPU over those " +
    `${AFTER_S[AFTER_S.length - 1]} s (10 ms ticks).\n\n` +
    table(["containerd", "shim", "idle", "after burst", ...AFTER_S.map((s) => `+${s} s`), "CPU ms/s while idling"], rows));
}

await main();
