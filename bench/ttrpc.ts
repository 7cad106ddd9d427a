// Unary ttrpc call throughput and latency: our server (in a child process, as the shim would be) versus
// containerd 1.6.20's Go runc shim, both driven by our client. Run as root after `npx tsc -p tsconfig.json`:
//   node dist/bench/ttrpc.js [--seconds 3] [--no-append]
// Prints a table and appends it to bench/RESULTS.md (section "ttrpc").
import { execFileSync, fork, spawn } from "node:child_process";
import { appendFileSync, closeSync, constants as fsc, existsSync, openSync, readFileSync, readdirSync, readlinkSync, realpathSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { containerd } from "../src/gen/task.js";
import { Client, Server, unary } from "../src/ttrpc/index.js";
import { REPO_ROOT } from "../test/helpers/image.js";
import { makeBundle, requireRoot } from "../test/helpers/rootfs.js";

/** Where scripts/install-deps.sh unpacks Debian 12's containerd, under this checkout. */
const SHIM = join(REPO_ROOT, ".deps", "containerd", "bookworm", "usr", "bin", "containerd-shim-runc-v2");
const TASK = "containerd.task.v2.Task";
const v2 = containerd.task.v2;

interface Row {
  target: string;
  concurrency: number;
  calls: number;
  perSec: number;
  p50: number;
  p99: number;
  /** Server process CPU (user + system) per call, in microseconds. */
  cpuUs: number;
}

/** User + system CPU of a process (all threads), in microseconds (from /proc, 100 Hz ticks). */
function cpuOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

/** Child mode: serve Echo (raw) and a typed State on `path` until killed. */
async function serve(path: string): Promise<void> {
  const server = new Server();
  server.register(TASK, {
    Echo: { call: async (p) => p },
    State: unary(v2.StateRequest, v2.StateResponse, (req) => ({ id: req.id, bundle: "/run/b", pid: 42, status: 2 })),
  });
  const listener = createServer();
  await new Promise<void>((resolve) => listener.listen(path, resolve));
  server.serve(listener);
  process.send?.("ready");
}

/** Calls `once` from `concurrency` loops for `seconds`; returns throughput and latency percentiles (ms). */
async function measure(target: string, serverPid: number, concurrency: number, seconds: number, once: () => Promise<unknown>): Promise<Row> {
  for (let i = 0; i < 2000; i++) await once(); // warm-up (JIT)
  const cpu0 = cpuOf(serverPid);
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const s = performance.now();
        await once();
        lat.push(performance.now() - s);
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const pct = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] ?? 0;
  const cpuUs = (cpuOf(serverPid) - cpu0) / lat.length;
  return { target, concurrency, calls: lat.length, perSec: lat.length / elapsed, p50: pct(0.5), p99: pct(0.99), cpuUs };
}

/** Starts the Go shim for a bundle; returns its socket path and pid. */
async function startGoShim(dir: string, id: string): Promise<{ path: string; pids: () => number[]; logFd: number }> {
  const bundle = await makeBundle(join(dir, "bundle"), { args: ["sleep", "60"] });
  execFileSync("mkfifo", [join(bundle, "log")]);
  // As containerd does: hold the log FIFO O_RDWR so the daemon's O_WRONLY open does not block.
  const logFd = openSync(join(bundle, "log"), fsc.O_RDWR | fsc.O_NONBLOCK);
  const args = ["-namespace", "bench", "-address", join(dir, "fake.sock"), "-publish-binary", "/bin/true", "-id", id, "start"];
  const out = await new Promise<string>((resolve, reject) => {
    // stdin from /dev/null: the Go shim's start reads stdin to EOF.
    const child = spawn(SHIM, args, { cwd: bundle, stdio: ["ignore", "pipe", "inherit"] });
    let text = "";
    child.stdout.on("data", (c: Buffer) => (text += c.toString()));
    child.on("close", (code) => (code === 0 ? resolve(text.trim()) : reject(new Error(`Go shim start failed (${code})`))));
  });
  // The daemon is re-executed from os.Executable(), the resolved path (.deps may be a symlink).
  const exe = realpathSync(SHIM);
  const pids = (): number[] =>
    readdirSync("/proc")
      .filter((e) => /^\d+$/.test(e))
      .filter((e) => {
        try {
          const argv = readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0");
          return readlinkSync(`/proc/${e}/exe`) === exe && argv.includes(id);
        } catch {
          return false;
        }
      })
      .map(Number);
  return { path: out.replace(/^unix:\/\//, ""), pids, logFd };
}

function table(rows: Row[]): string {
  const head = "| server | method | concurrency | calls | calls/s | p50 ms | p99 ms | server CPU µs/call |\n|---|---|---|---|---|---|---|---|\n";
  const line = (r: Row): string =>
    `| ${r.target} | ${r.concurrency} | ${r.calls} | ${r.perSec.toFixed(0)} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${r.cpuUs.toFixed(1)} |`;
  return head + rows.map(line).join("\n") + "\n";
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === "--serve") return serve(argv[1]!);
  const seconds = argv.includes("--seconds") ? Number(argv[argv.indexOf("--seconds") + 1]) : 3;
  requireRoot(["runc", "mkfifo"]);
  if (!existsSync(SHIM)) throw new Error(`Missing Go shim "${SHIM}" (run scripts/install-deps.sh)`);
  const dir = await mkdtemp(join(tmpdir(), "bench-ttrpc-"));
  const id = `bench-${process.pid}`;
  const ours = fork(new URL(import.meta.url).pathname, ["--serve", join(dir, "ours.sock")], { stdio: "inherit" });
  let goShim: Awaited<ReturnType<typeof startGoShim>> | undefined;
  const rows: Row[] = [];
  try {
    await new Promise<void>((resolve) => ours.once("message", () => resolve()));
    goShim = await startGoShim(dir, id);
    const a = await Client.connect(join(dir, "ours.sock"));
    const b = await Client.connect(goShim.path);
    const small = v2.StateRequest.encode({ id: "c0ffee" }).finish();
    const connect = v2.ConnectRequest.encode({ id: "unknown" }).finish();
    const oursPid = ours.pid ?? 0;
    const goPid = goShim.pids().find((p) => !readFileSync(`/proc/${p}/cmdline`, "utf8").includes("\0start\0")) ?? 0;
    for (const c of [1, 8]) {
      rows.push(await measure(`ours (Node) | Echo`, oursPid, c, seconds, () => a.call(TASK, "Echo", small)));
      rows.push(await measure(`ours (Node) | State (typed)`, oursPid, c, seconds, () => a.callTyped(TASK, "State", v2.StateRequest, { id: "c0ffee" }, v2.StateResponse)));
      rows.push(await measure(`runc-v2 1.6.20 (Go) | Connect`, goPid, c, seconds, () => b.call(TASK, "Connect", connect)));
    }
    a.close();
    b.close();
  } finally {
    ours.kill();
    for (const pid of goShim?.pids() ?? []) process.kill(pid, "SIGKILL");
    if (goShim) {
      closeSync(goShim.logFd);
      await rm(goShim.path, { force: true }); // a killed Go shim leaves its socket behind
    }
    await rm(dir, { recursive: true, force: true });
  }
  const out = table(rows);
  process.stdout.write(out);
  if (!argv.includes("--no-append")) {
    const results = new URL("../../bench/RESULTS.md", import.meta.url).pathname;
    const header = existsSync(results) ? "" : "# Benchmark results\n";
    const when = new Date().toISOString();
    appendFileSync(results, `${header}\n## ttrpc\n\n\`node dist/bench/ttrpc.js --seconds ${seconds}\` (${when}, node ${process.version}). One connection from our client in the bench process (at concurrency 8 the client is likely the limit); server CPU from /proc of the server process.\n\n${out}`);
  }
}

await main();
