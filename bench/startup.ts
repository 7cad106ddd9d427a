// Our shim's own start path without containerd: `shim start` wall time, time from spawning `start` to the
// daemon's first answered Connect, the daemon's memory right after that Connect, and `shim delete` wall time.
// Each variant sets SHIM_TS_DAEMON_NODE_FLAGS (the daemon's Node flags). Run as root after the build:
//   node dist/bench/startup.js [--runs 10] [--variants "--lite-mode|"] [--binary release/containerd-shim-ts-v2] [--write]
// (variants separated by "|"; an empty one means no flags.) --binary runs that file instead of the launcher
// bin/containerd-shim-ts-v2 (e.g. the single executable of `npm run package`); "launcher" names the launcher,
// and several comma-separated binaries are measured interleaved, one table row per binary and variant.
// A variant "default" leaves SHIM_TS_DAEMON_NODE_FLAGS unset; "@/abs/bin/containerd-shim-ts-v2" runs another
// build's launcher (unset too); "NAME=value" sets that variable instead (e.g. NODE_COMPILE_CACHE=/dir on
// Node >= 22). The daemon's CPU time up to its first answer comes from /proc schedstat (all threads).
import { execFileSync, spawn } from "node:child_process";
import { closeSync, constants as fsc, mkdirSync, openSync, rmdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { containerd as gen, google } from "../src/gen/task.js";
import { Client } from "../src/ttrpc/index.js";
import { waitFor } from "../test/helpers/wait.js";
import { alive, arg, cpuMsOf, fmt, memoryOf, quantile, record, stamp, table } from "./lib.js";

const LAUNCHER = fileURLToPath(new URL("../../bin/containerd-shim-ts-v2", import.meta.url));
const T = gen.task.v2;
/** Our namespace; `delete` runs `runc --root /run/containerd/runc/<NS>`, which creates that dir: removed at the end. */
const NS = `bench-${process.pid}`;

function run(bin: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ ms: number; out: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(bin, args, { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("latin1").on("data", (d: string) => (out += d));
    child.stderr.resume();
    child.stdin.end();
    child.once("error", reject);
    child.once("close", (code) => resolve({ ms: performance.now() - t0, out, code }));
  });
}

interface Sample { startMs: number; connectMs: number; daemonCpuMs: number; rss: number; pss: number; deleteMs: number }

async function once(bin: string, dir: string, id: string, env: NodeJS.ProcessEnv): Promise<Sample> {
  const bundle = path.join(dir, id);
  mkdirSync(bundle);
  execFileSync("mkfifo", [path.join(bundle, "log")]);
  const logFd = openSync(path.join(bundle, "log"), fsc.O_RDWR | fsc.O_NONBLOCK); // as containerd holds it
  try {
    const common = ["-namespace", NS, "-address", path.join(dir, "c.sock"), "-publish-binary", "/bin/true", "-id", id];
    const t0 = performance.now();
    const st = await run(bin, [...common, "start"], bundle, env);
    if (st.code !== 0 || !st.out.startsWith("unix://")) throw new Error(`start failed (${st.code}): ${st.out}`);
    const sock = st.out.slice("unix://".length);
    const client = await Client.connect(sock);
    const conn = await client.callTyped("containerd.task.v2.Task", "Connect", T.ConnectRequest, { id }, T.ConnectResponse, { timeoutMs: 10_000 });
    const connectMs = performance.now() - t0;
    const daemonCpuMs = cpuMsOf(conn.shimPid);
    const m = memoryOf(conn.shimPid);
    await client.callTyped("containerd.task.v2.Task", "Shutdown", T.ShutdownRequest, { id, now: true }, google.protobuf.Empty, { timeoutMs: 5000 })
      .catch(() => undefined); // the daemon may close the connection as it exits
    client.close();
    await waitFor(() => !alive(conn.shimPid), { timeoutMs: 10_000, intervalMs: 5, what: "daemon exit" });
    const del = await run(bin, [...common, "delete"], bundle, env);
    if (del.code !== 0) throw new Error(`delete failed (${del.code})`);
    return { startMs: st.ms, connectMs, daemonCpuMs, rss: m.rss / 1024, pss: m.pss / 1024, deleteMs: del.ms };
  } finally {
    closeSync(logFd);
  }
}

/** `--binary a,b`: files to run as the shim ("launcher" = bin/containerd-shim-ts-v2); default the launcher. */
function binaries(): { name: string; path: string }[] {
  return arg("binary", "launcher").split(",").map((b) => b.trim()).filter((b) => b !== "").map((b) =>
    b === "launcher" ? { name: "launcher (bin/, Node " + process.version + ")", path: LAUNCHER } : { name: b, path: path.resolve(b) });
}

async function main(): Promise<void> {
  const runs = Number(arg("runs", "10"));
  const variants = arg("variants", "--lite-mode|").split("|");
  const bins = binaries();
  const key = (b: number, v: number): string => `${b}/${v}`;
  const dir = await mkdtemp(path.join(tmpdir(), "bench-start-"));
  const samples = new Map<string, Sample[]>();
  try {
    for (let i = 0; i < runs + 1; i++) {
      for (const [b, bin] of bins.entries()) {
        for (const [vi, v] of variants.entries()) {
          const env: NodeJS.ProcessEnv = { ...process.env, SHIM_TS_DAEMON_NODE_FLAGS: v, SHIM_TS_SOCKET_DIR: path.join(dir, "s"),
            TTRPC_ADDRESS: path.join(dir, "c.sock.ttrpc") };
          const assign = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(v);
          if (v === "default" || v.startsWith("@") || assign) delete env["SHIM_TS_DAEMON_NODE_FLAGS"];
          if (assign) env[assign[1]!] = assign[2];
          const s = await once(v.startsWith("@") ? v.slice(1) : bin.path, dir, `b${i}-${b}-${vi}`, env);
          if (i > 0) samples.set(key(b, vi), [...(samples.get(key(b, vi)) ?? []), s]); // run 0 warms the page cache
        }
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
  const rows = bins.flatMap((bin, b) => variants.map((v, vi) => {
    const s = samples.get(key(b, vi))!;
    const row = [v === "" ? "(none)" : `\`${v}\``, runs, med(s.map((x) => x.startMs)), fmt(quantile(s.map((x) => x.startMs), 0.9), 0),
      med(s.map((x) => x.connectMs)), fmt(quantile(s.map((x) => x.connectMs), 0.9), 0), med(s.map((x) => x.daemonCpuMs)),
      fmt(quantile(s.map((x) => x.rss), 0.5), 1),
      fmt(quantile(s.map((x) => x.pss), 0.5), 1), med(s.map((x) => x.deleteMs)), fmt(quantile(s.map((x) => x.deleteMs), 0.9), 0)];
    return bins.length > 1 || arg("binary", "") !== "" ? [bin.name, ...row] : row;
  }));
  const header = ["daemon Node flags", "runs", "start ms", "start p90", "to first Connect ms", "p90", "daemon CPU ms by then", "daemon RSS MiB", "PSS MiB", "delete ms", "delete p90"];
  const withBinary = rows[0] !== undefined && rows[0].length > header.length;
  record(withBinary ? "Start path: single executable and launcher" : "Start path (our shim alone)",
    `\`node dist/bench/startup.js ${process.argv.slice(2).join(" ")}\` (${stamp()}). ` +
    "`shim start` run directly (no containerd, empty bundle, log FIFO held open); connect = from spawning `start` " +
    "to the daemon's answer to the first Connect; the daemon's CPU time and memory right after; `delete` after Shutdown. Medians " +
    "(p90 where shown)" + (withBinary ? "; the binaries interleaved run by run" : "") + ".\n\n" +
    table(withBinary ? ["binary", ...header] : header, rows));
}

await main();
