// State calls/s over ttrpc on a running container's shim socket (the socket containerd uses), our client
// against both shims: ours on containerd.task.v2.Task, runc-v2 on v3 under containerd 2.1 (it serves only v3)
// and v2 under 1.6. --flags "A|B" adds our daemon started with Node flags A, then B (each on its own containerd
// whose env sets SHIM_TS_DAEMON_NODE_FLAGS; an empty entry = no flags). Run as root after the build:
//   node dist/bench/state.js [--seconds 3] [--versions 2.1,1.6] [--flags "|--no-opt"] [--runtime node,bun] [--write]
import { containerd as gen } from "../src/gen/task.js";
import { Client } from "../src/ttrpc/index.js";
import {
  OURS, RUNC, containerd, cpuOf, fmt, label, memoryOf, quantile, remove, runDetached, shimPid, shimSocket, stamp, table, versions, arg,
  flag, record, type ContainerdVersion, jsRuntimes, isBun, bunTag,
} from "./lib.js";

const T = gen.task.v2;

interface Row { name: string; conc: number; perSec: number; p50: number; p99: number; cpuUs: number; rssAfter: number }

async function drive(name: string, sock: string, service: string, id: string, pid: number, conc: number, seconds: number): Promise<Row> {
  const client = await Client.connect(sock);
  try {
    const once = async (): Promise<void> => {
      const r = await client.callTyped(service, "State", T.StateRequest, { id }, T.StateResponse);
      if (r.id !== id) throw new Error(`State answered for ${r.id}`);
    };
    for (let i = 0; i < 1000; i++) await once();
    const cpu0 = cpuOf(pid);
    const lat: number[] = [];
    const end = performance.now() + seconds * 1000;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: conc }, async () => {
      while (performance.now() < end) {
        const s = performance.now();
        await once();
        lat.push(performance.now() - s);
      }
    }));
    const elapsed = (performance.now() - t0) / 1000;
    return { name, conc, perSec: lat.length / elapsed, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99),
      cpuUs: (cpuOf(pid) - cpu0) / lat.length, rssAfter: memoryOf(pid).rss / 1024 };
  } finally {
    client.close();
  }
}

async function oneContainerd(v: ContainerdVersion, env: Record<string, string>, runtimes: [string, string][], seconds: number): Promise<Row[]> {
  const c = await containerd(v, env);
  const rows: Row[] = [];
  try {
    for (const [runtime, name] of runtimes) {
      const id = `state-${runtime === OURS ? "ts" : isBun(runtime) ? bunTag(runtime) : "go"}`;
      await runDetached(c, runtime, id, ["sleep", "3600"]);
      try {
        const service = runtime === RUNC && v === "2.1" ? "containerd.task.v3.Task" : "containerd.task.v2.Task";
        const pid = await shimPid(c, id);
        for (const conc of [1, 8]) rows.push(await drive(name, shimSocket(c, id), service, id, pid, conc, seconds));
      } finally {
        await remove(c, id);
      }
    }
  } finally {
    await c.stop();
  }
  return rows;
}

async function main(): Promise<void> {
  const seconds = Number(arg("seconds", "3"));
  const out: (string | number)[][] = [];
  for (const v of versions("2.1,1.6")) {
    const rows = await oneContainerd(v, {}, [[OURS, `${label(OURS)} default flags`], [RUNC, label(RUNC)],
      ...jsRuntimes().map((r): [string, string] => [r, label(r)])], seconds);
    for (const f of flag("flags") ? arg("flags", "").split("|") : []) {
      rows.push(...await oneContainerd(v, { SHIM_TS_DAEMON_NODE_FLAGS: f }, [[OURS, `${label(OURS)} ${f === "" ? "no flags" : f}`]], seconds));
    }
    for (const r of rows) {
      const go = rows.find((g) => g.name === label(RUNC) && g.conc === r.conc)!;
      out.push([v, r.name, r.conc, fmt(r.perSec, 0), fmt(r.p50, 3), fmt(r.p99, 3), fmt(r.cpuUs, 1), fmt(r.rssAfter, 1),
        fmt(r.perSec / go.perSec, 2), fmt(r.cpuUs / go.cpuUs, 2)]);
    }
  }
  record("State calls/s", `\`node dist/bench/state.js ${process.argv.slice(2).join(" ")}\` (${stamp()}). ` +
    `One connection from our client (bench process) to the shim socket of a running \`sleep\` container, ${seconds} s per row ` +
    "after 1000 warm-up calls; shim CPU (user+system) from /proc; RSS of the shim after the run. " +
    "ratios = ours / runc-v2 (calls/s, CPU per call). At concurrency 8 the Node client is likely the limit.\n\n" +
    table(["containerd", "shim", "concurrency", "calls/s", "p50 ms", "p99 ms", "shim CPU µs/call", "shim RSS MiB after", "ratio calls/s", "ratio CPU/call"], out));
}

await main();
