// Our shim's own start path without containerd: `shim start` wall time, time from spawning `start` to the
// daemon's first answered Connect, the daemon's memory right after that Connect, and `shim delete` wall time.
// Each variant sets SHIM_TS_DAEMON_NODE_FLAGS (the daemon's Node flags). Run as root after the build:
//   node dist/bench/startup.js [--runs 10] [--variants "--lite-mode|"] [--runtime node,bun] [--write]
// (variants separated by "|"; an empty one means no flags.) --runtime node,bun adds the shim on Bun
// (SHIM_TS_RUNTIME=bun, no Node flags); "node,bun,bun --smol" adds one with Bun's --smol as well.
import { execFileSync, spawn } from "node:child_process";
import { closeSync, constants as fsc, mkdirSync, openSync, rmdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { containerd as gen, google } from "../src/gen/task.js";
import { Client } from "../src/ttrpc/index.js";
import { waitFor } from "../test/helpers/wait.js";
import { alive, arg, fmt, memoryOf, quantile, record, stamp, table } from "./lib.js";

const BIN = fileURLToPath(new URL("../../bin/containerd-shim-ts-v2", import.meta.url));
const T = gen.task.v2;
/** The variant that runs the shim on Bun (--runtime bun). */
const BUN = "<bun>";
/** Our namespace; `delete` runs `runc --root /run/containerd/runc/<NS>`, which creates that dir: removed at the end. */
const NS = `bench-${process.pid}`;

function run(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ ms: number; out: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(BIN, args, { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("latin1").on("data", (d: string) => (out += d));
    child.stderr.resume();
    child.stdin.end();
    child.once("error", reject);
    child.once("close", (code) => resolve({ ms: performance.now() - t0, out, code }));
  });
}

interface Sample { startMs: number; connectMs: number; rss: number; pss: number; deleteMs: number }

async function once(dir: string, id: string, env: NodeJS.ProcessEnv): Promise<Sample> {
  const bundle = path.join(dir, id);
  mkdirSync(bundle);
  execFileSync("mkfifo", [path.join(bundle, "log")]);
  const logFd = openSync(path.join(bundle, "log"), fsc.O_RDWR | fsc.O_NONBLOCK); // as containerd holds it
  try {
    const common = ["-namespace", NS, "-address", path.join(dir, "c.sock"), "-publish-binary", "/bin/true", "-id", id];
    const t0 = performance.now();
    const st = await run([...common, "start"], bundle, env);
    if (st.code !== 0 || !st.out.startsWith("unix://")) throw new Error(`start failed (${st.code}): ${st.out}`);
    const sock = st.out.slice("unix://".length);
    const client = await Client.connect(sock);
    const conn = await client.callTyped("containerd.task.v2.Task", "Connect", T.ConnectRequest, { id }, T.ConnectResponse, { timeoutMs: 10_000 });
    const connectMs = performance.now() - t0;
    const m = memoryOf(conn.shimPid);
    await client.callTyped("containerd.task.v2.Task", "Shutdown", T.ShutdownRequest, { id, now: true }, google.protobuf.Empty, { timeoutMs: 5000 })
      .catch(() => undefined); // the daemon may close the connection as it exits
    client.close();
    await waitFor(() => !alive(conn.shimPid), { timeoutMs: 10_000, intervalMs: 5, what: "daemon exit" });
    const del = await run([...common, "delete"], bundle, env);
    if (del.code !== 0) throw new Error(`delete failed (${del.code})`);
    return { startMs: st.ms, connectMs, rss: m.rss / 1024, pss: m.pss / 1024, deleteMs: del.ms };
  } finally {
    closeSync(logFd);
  }
}

async function main(): Promise<void> {
  const runs = Number(arg("runs", "10"));
  // Each --runtime entry "bun" or "bun <flags>" is a variant on Bun with those (Bun) flags.
  const buns = arg("runtime", "node").split(",").map((s) => s.trim()).filter((s) => /^bun(\s|$)/.test(s));
  const variants = [...arg("variants", "--lite-mode|").split("|"), ...buns.map((b) => BUN + b.slice(3).trim())];
  const dir = await mkdtemp(path.join(tmpdir(), "bench-start-"));
  const samples = new Map<string, Sample[]>(variants.map((v) => [v, []]));
  try {
    for (let i = 0; i < runs + 1; i++) {
      for (const v of variants) {
        const env = { ...process.env, SHIM_TS_DAEMON_NODE_FLAGS: v.startsWith(BUN) ? v.slice(BUN.length) : v, SHIM_TS_SOCKET_DIR: path.join(dir, "s"),
          TTRPC_ADDRESS: path.join(dir, "c.sock.ttrpc"), ...(v.startsWith(BUN) ? { SHIM_TS_RUNTIME: "bun" } : {}) };
        const s = await once(dir, `b${i}-${variants.indexOf(v)}`, env);
        if (i > 0) samples.get(v)!.push(s); // run 0 warms the page cache
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
    try {
      rmdirSync(`/run/containerd/runc/${NS}`);
    } catch {
      // not created, or not empty (then it is not ours to remove)
    }
  }
  const med = (xs: number[]): string => fmt(quantile(xs, 0.5), 0);
  const rows = variants.map((v) => {
    const s = samples.get(v)!;
    const name = v.startsWith(BUN) ? `Bun (SHIM_TS_RUNTIME=bun)${v === BUN ? "" : ` \`${v.slice(BUN.length)}\``}` : v === "" ? "(none)" : `\`${v}\``;
    return [name, runs, med(s.map((x) => x.startMs)), fmt(quantile(s.map((x) => x.startMs), 0.9), 0),
      med(s.map((x) => x.connectMs)), fmt(quantile(s.map((x) => x.connectMs), 0.9), 0), fmt(quantile(s.map((x) => x.rss), 0.5), 1),
      fmt(quantile(s.map((x) => x.pss), 0.5), 1), med(s.map((x) => x.deleteMs))];
  });
  record("Start path (our shim alone)", `\`node dist/bench/startup.js ${process.argv.slice(2).join(" ")}\` (${stamp()}). ` +
    "`shim start` run directly (no containerd, empty bundle, log FIFO held open); connect = from spawning `start` " +
    "to the daemon's answer to the first Connect; memory of that daemon right after; `delete` after Shutdown. Medians " +
    "(p90 where shown).\n\n" +
    table(["daemon Node flags", "runs", "start ms", "start p90", "to first Connect ms", "p90", "daemon RSS MiB", "PSS MiB", "delete ms"], rows));
}

await main();
