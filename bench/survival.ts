// Robustness, ours vs runc-v2, each on a private containerd. Run as root after the build:
//   node dist/bench/survival.js [--fuzz-seconds 5] [--churn 50] [--versions 2.1,1.6] [--write]
// fuzz: random bytes and random frames with a valid 10-byte ttrpc header at a running container's shim socket,
//   then: is the shim alive, does it answer State, is the task still RUNNING.
// kill -9 of the shim: does containerd notice (task no longer RUNNING), is the container's process gone,
//   and after `ctr task delete` + `ctr container delete`: bundle, mounts, socket file, runc state left?
// churn: N `ctr run --rm … true` cycles: cycles/s, then shims left, mounts, runc state, containerd's fd count.
import { randomBytes, randomInt } from "node:crypto";
import { existsSync, lstatSync, readdirSync, unlinkSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { containerd as gen } from "../src/gen/task.js";
import { Client } from "../src/ttrpc/index.js";
import { containerProcesses, mountsUnder, processesUnder } from "../test/helpers/procs.js";
import { waitFor } from "../test/helpers/wait.js";
import {
  OURS, RUNC, RUNTIMES, BUSYBOX_REF, alive, containerd, fmt, label, remove, runDetached, shimPid, shimSocket, stamp, table, versions,
  arg, record, timeCtr, type Containerd,
} from "./lib.js";

const T = gen.task.v2;
const svc = (c: Containerd, runtime: string): string =>
  runtime === RUNC && c.version === "2.1" ? "containerd.task.v3.Task" : "containerd.task.v2.Task";
const tag = (runtime: string): string => (runtime === OURS ? "ts" : "go");

/** A random frame: valid header (length = payload length), random stream id, type 1-3 or any byte, random flags. */
function randomFrame(): Buffer {
  const payload = randomBytes(randomInt(0, 64));
  const h = Buffer.alloc(10);
  h.writeUInt32BE(payload.length, 0);
  h.writeUInt32BE(randomInt(0, 2) === 0 ? randomInt(1, 16) : randomInt(0, 2 ** 32), 4);
  h[8] = randomInt(0, 4) === 0 ? randomInt(0, 256) : randomInt(1, 4);
  h[9] = randomInt(0, 256);
  return Buffer.concat([h, payload]);
}

/** One connection: writes `chunks`, half-closes, waits up to 100 ms for the server to close, destroys. */
function connectAndSend(sock: string, chunks: Buffer[]): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(sock);
    const done = (): void => { clearTimeout(timer); s.destroy(); resolve(); };
    const timer = setTimeout(done, 1000);
    s.on("error", done);
    s.on("data", () => undefined);
    s.once("connect", () => {
      for (const c of chunks) s.write(c);
      s.end();
      setTimeout(done, 100);
    });
    s.once("close", done);
  });
}

async function stateOk(c: Containerd, runtime: string, sock: string, id: string): Promise<boolean> {
  try {
    const client = await Client.connect(sock);
    try {
      const r = await client.callTyped(svc(c, runtime), "State", T.StateRequest, { id }, T.StateResponse, { timeoutMs: 2000 });
      return r.id === id && r.status === 2; // RUNNING
    } finally {
      client.close();
    }
  } catch {
    return false;
  }
}

async function taskStatus(c: Containerd, id: string): Promise<string> {
  const r = await c.ctr(["task", "ls"]);
  for (const line of r.stdout.split("\n").slice(1)) {
    const [tid, , status] = line.trim().split(/\s+/);
    if (tid === id) return status ?? "?";
  }
  return "gone";
}

async function fuzz(c: Containerd, runtime: string, seconds: number): Promise<(string | number)[]> {
  const id = `fuzz-${tag(runtime)}`;
  await runDetached(c, runtime, id, ["sleep", "3600"]);
  try {
    const pid = await shimPid(c, id);
    const sock = shimSocket(c, id);
    let conns = 0; let frames = 0; let bytes = 0;
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end && alive(pid)) {
      const raw = conns % 2 === 0;
      const chunks = raw ? [randomBytes(randomInt(1, 4096))] : Array.from({ length: randomInt(1, 40) }, randomFrame);
      conns++; frames += raw ? 0 : chunks.length; bytes += chunks.reduce((a, b) => a + b.length, 0);
      await connectAndSend(sock, chunks);
    }
    const shimAlive = alive(pid);
    const state = shimAlive && await stateOk(c, runtime, sock, id);
    const status = await taskStatus(c, id);
    return [c.version, "fuzz", label(runtime), `${conns} conns, ${frames} frames, ${(bytes / 1024).toFixed(0)} KiB`,
      shimAlive ? "alive" : "**dead**", state ? "State ok" : "**no State**", `task ${status}`];
  } finally {
    await remove(c, id).catch(() => undefined);
    await removeIfDead(shimSocket(c, id));
  }
}

/** Removes a socket nobody listens on (the Go shim leaves its socket when it dies): the bench cleans up. */
async function removeIfDead(sock: string): Promise<void> {
  try {
    if (!lstatSync(sock).isSocket()) return;
  } catch {
    return;
  }
  const refused = await new Promise<boolean>((resolve) => {
    const s = net.connect(sock);
    s.once("connect", () => { s.destroy(); resolve(false); });
    s.once("error", (e: NodeJS.ErrnoException) => resolve(e.code === "ECONNREFUSED"));
  });
  if (refused) unlinkSync(sock);
}

async function kill9(c: Containerd, runtime: string): Promise<(string | number)[]> {
  const id = `kill-${tag(runtime)}`;
  await runDetached(c, runtime, id, ["sleep", "3600"]);
  const pid = await shimPid(c, id);
  const sock = shimSocket(c, id);
  const t0 = performance.now();
  process.kill(pid, "SIGKILL");
  let status = "";
  await waitFor(async () => (status = await taskStatus(c, id)) !== "RUNNING", { timeoutMs: 20_000, intervalMs: 20, what: `${id} not RUNNING` });
  const detectMs = performance.now() - t0;
  await waitFor(() => containerProcesses(c.namespace, id).length === 0, { timeoutMs: 10_000, what: `${id} processes gone` })
    .catch(() => undefined);
  const procs = containerProcesses(c.namespace, id).length;
  await c.ctr(["task", "delete", id]);
  await c.ctr(["container", "delete", id]);
  const bundle = path.join(c.state, "io.containerd.runtime.v2.task", c.namespace, id);
  const leftovers = (): string[] => [procs > 0 ? `${procs} container procs` : "", existsSync(bundle) ? "bundle" : "",
    mountsUnder(c.state).length > 0 ? "mounts" : "", existsSync(sock) ? "socket file" : "",
    existsSync(`/run/containerd/runc/${c.namespace}/${id}`) ? "runc state" : ""].filter(Boolean);
  // containerd cleans up a dead shim asynchronously: give it a bounded time.
  await waitFor(() => leftovers().length === 0, { timeoutMs: 10_000, what: "cleanup" }).catch(() => undefined);
  const leaks = leftovers();
  await removeIfDead(sock);
  return [c.version, "kill -9 shim", label(runtime), `status after: ${status}`, `${fmt(detectMs, 0)} ms to notice`,
    procs === 0 ? "container killed" : "**container alive**", leaks.length ? `**left: ${leaks.join(", ")}**` : "nothing left"];
}

function fdCount(pid: number | undefined): number {
  try { return pid === undefined ? -1 : readdirSync(`/proc/${pid}/fd`).length; } catch { return -1; }
}

async function churn(c: Containerd, runtime: string, n: number): Promise<(string | number)[]> {
  await timeCtr(c, ["run", "--rm", "--runtime", runtime, BUSYBOX_REF, `churn-warm-${tag(runtime)}`, "true"]);
  const fd0 = fdCount(c.pid);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await timeCtr(c, ["run", "--rm", "--runtime", runtime, BUSYBOX_REF, `churn-${tag(runtime)}-${i}`, "true"]);
  const secs = (performance.now() - t0) / 1000;
  let shims = 0;
  await waitFor(() => (shims = processesUnder(c.dir, [c.pid]).length) === 0, { timeoutMs: 5000, what: "shims gone" }).catch(() => undefined);
  const runcLeft = existsSync(`/run/containerd/runc/${c.namespace}`) ? readdirSync(`/run/containerd/runc/${c.namespace}`).length : 0;
  const bundles = path.join(c.state, "io.containerd.runtime.v2.task", c.namespace);
  const left = existsSync(bundles) ? readdirSync(bundles).length : 0;
  return [c.version, `churn ×${n}`, label(runtime), `${fmt(n / secs, 2)} cycles/s`, `${shims} shims left`,
    `containerd fds ${fd0} → ${fdCount(c.pid)}`, `${mountsUnder(c.state).length} mounts, ${runcLeft} runc state, ${left} bundles left`];
}

async function main(): Promise<void> {
  const seconds = Number(arg("fuzz-seconds", "5"));
  const n = Number(arg("churn", "50"));
  const rows: (string | number)[][] = [];
  for (const v of versions("2.1,1.6")) {
    for (const r of RUNTIMES) {
      const c = await containerd(v); // one containerd per runtime: a dying Go shim must not affect ours
      try {
        rows.push(await fuzz(c, r, seconds));
        rows.push(await kill9(c, r));
        rows.push(await churn(c, r, n));
      } finally {
        await c.stop();
      }
    }
  }
  rows.sort((a, b) => String(a[0]).localeCompare(String(b[0])) || String(a[1]).localeCompare(String(b[1])));
  record("Survival", `\`node dist/bench/survival.js ${process.argv.slice(2).join(" ")}\` (${stamp()}). ` +
    `fuzz: ${seconds} s of connections to a running container's shim socket, alternating random bytes (≤ 4 KiB) ` +
    "and 1-40 random frames with a valid header (random stream id, type, flags, ≤ 64 B payload); then the shim's " +
    "State (v3 for runc-v2 on 2.1) and `ctr task ls`. kill -9: time until `ctr task ls` no longer says RUNNING, then " +
    "`ctr task delete` + `container delete` and a look for leftovers. churn: sequential `ctr run --rm … true`.\n\n" +
    table(["containerd", "test", "shim", "load / outcome", "", "", ""], rows));
}

await main();
