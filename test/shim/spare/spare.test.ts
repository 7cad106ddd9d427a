// The warm spare (src/shim/spare/, src/shim/manager/warm.ts) with the real binary and no containerd: `start`
// with SHIM_TS_WARM=1 against a stand-in gRPC socket (the spare watches it) and a private socket dir.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { suite, test, type TestContext } from "node:test";
import { containerd, google } from "../../../src/gen/task.js";
import { SOCKET_DIR_ENV } from "../../../src/shim/socket/address.js";
import { adopt, buildId, sparePidFile, spareSocketPath, type AdoptRequest } from "../../../src/shim/spare/protocol.js";
import { probeSocket } from "../../../src/shim/socket/socket.js";
import { Client } from "../../../src/ttrpc/index.js";
import { REPO_ROOT } from "../../helpers/image.js";
import { waitFor } from "../../helpers/wait.js";
import { alive, daemonsFor, requireRoot, runShim, tempDir } from "../../helpers/shim.js";

const T = containerd.task.v2;

interface Env { root: string; grpc: string; sockDir: string; env: NodeJS.ProcessEnv; spare: string; containerd: net.Server }

/** Kills every process whose command line names `root` (daemons and spares of this test). */
function processesOf(root: string): number[] {
  return readdirSync("/proc").filter((n) => /^\d+$/.test(n)).map(Number).filter((pid) => {
    try {
      return pid !== process.pid && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(root);
    } catch {
      return false;
    }
  });
}

async function setup(t: TestContext, extra: NodeJS.ProcessEnv = {}): Promise<Env> {
  requireRoot("the warm spare tests");
  const root = await tempDir(t, "shim-warm-");
  const grpc = path.join(root, "c.sock");
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve) => server.listen(grpc, resolve));
  const sockDir = path.join(root, "s");
  t.after(async () => {
    for (const pid of processesOf(root)) process.kill(pid, "SIGKILL");
    await waitFor(() => processesOf(root).every((pid) => !alive(pid)), { what: "the test's shims to exit" });
    server.close();
  });
  const env = { ...process.env, [SOCKET_DIR_ENV]: sockDir, TTRPC_ADDRESS: `${grpc}.ttrpc`, SHIM_TS_WARM: "1", ...extra };
  return { root, grpc, sockDir, env, spare: spareSocketPath(grpc, "t", sockDir), containerd: server };
}

function bundle(env: Env, id: string): string {
  const dir = path.join(env.root, "bundles", id);
  mkdirSync(dir, { recursive: true });
  return dir;
}

async function start(env: Env, id: string, extra: NodeJS.ProcessEnv = {}) {
  const r = await runShim(["-namespace", "t", "-address", env.grpc, "-publish-binary", "/bin/true", "-id", id, "start"],
    { cwd: bundle(env, id), env: { ...env.env, ...extra } });
  assert.deepEqual([r.code, r.stderr], [0, ""]);
  return { ms: r.ms, sock: r.stdout.toString("utf8").replace(/^unix:\/\//, "") };
}

/** The pid of the spare listening now (pid file written, socket answering), else undefined. */
async function readySpare(env: Env, not?: number): Promise<number | undefined> {
  if (!existsSync(sparePidFile(env.spare)) || !(await probeSocket(env.spare, 500))) return undefined;
  const pid = Number(readFileSync(sparePidFile(env.spare), "utf8"));
  return pid !== not && alive(pid) ? pid : undefined;
}

async function shimPid(sock: string): Promise<number> {
  const client = await Client.connect(sock);
  try {
    const res = await client.callTyped("containerd.task.v2.Task", "Connect", T.ConnectRequest, { id: "x" }, T.ConnectResponse, { timeoutMs: 5000 });
    return res.shimPid;
  } finally {
    client.close();
  }
}

/**
 * The build id the spare computes for itself. It names the engine, and the launcher runs the spare on Bun
 * unless SHIM_TS_RUNTIME=node, while this test runs on Node: so ask that engine.
 */
function spareBuildId(): string {
  if (process.env.SHIM_TS_RUNTIME === "node") return buildId();
  const bun = path.join(REPO_ROOT, "node_modules", "@oven", "bun-linux-x64", "bin", "bun");
  const url = new URL("../../../src/shim/spare/protocol.js", import.meta.url).href;
  const r = spawnSync(bun, ["-e", `const m = await import(${JSON.stringify(url)}); console.log(m.buildId());`], { encoding: "utf8" });
  assert.equal(r.status, 0, `${bun}: ${r.stderr}`);
  return r.stdout.trim();
}

function request(env: Env, id: string, over: Partial<AdoptRequest> = {}): AdoptRequest {
  return { build: spareBuildId(), id, bundle: bundle(env, id), socket: path.join(env.sockDir, id), debug: false, nodeFlags: ["--lite-mode"], ...over };
}

void suite("warm spare", { timeout: 60_000 }, () => {
  void test("is off by default: start spawns no spare", async (t) => {
    const env = await setup(t, { SHIM_TS_WARM: "" });
    const a = await start(env, "pod1");
    assert.ok(await shimPid(a.sock) > 0);
    assert.equal(existsSync(env.spare), false, "no spare socket");
    assert.equal(existsSync(sparePidFile(env.spare)), false);
  });

  void test("the next pod is adopted by the spare, and a new spare boots", async (t) => {
    const env = await setup(t);
    const a = await start(env, "pod1");
    const spare = await waitFor(() => readySpare(env), { what: "the first spare" });
    const b = await start(env, "pod2");
    assert.equal(await shimPid(b.sock), spare, "pod2's daemon is the spare");
    assert.deepEqual(daemonsFor(b.sock), [spare], "the test helper finds an adopted spare by its socket");
    assert.notEqual(await shimPid(a.sock), spare);
    const next = await waitFor(() => readySpare(env, spare), { what: "the next spare" });
    assert.ok(alive(spare) && alive(next));
    t.diagnostic(`start: cold ${Math.round(a.ms)} ms, adopting ${Math.round(b.ms)} ms`);
    // The adopted daemon holds its pod's socket and works like a cold one: a Shutdown makes it exit.
    const client = await Client.connect(b.sock);
    await client.callTyped("containerd.task.v2.Task", "Shutdown", T.ShutdownRequest, { id: "pod2" }, google.protobuf.Empty, { timeoutMs: 5000 }).catch(() => undefined);
    client.close();
    await waitFor(() => !alive(spare) && !existsSync(b.sock), { what: "the adopted daemon to exit on Shutdown" });
  });

  void test("a second spare for the same containerd exits and leaves the first one's pid file alone", async (t) => {
    const env = await setup(t);
    await start(env, "pod1");
    const first = await waitFor(() => readySpare(env), { what: "the first spare" });
    // What a `start` racing another one spawns: a spare for the same address and namespace.
    const r = await runShim(["-namespace", "t", "-address", env.grpc, "-publish-binary", "/bin/true", "-spare", env.spare, "-bundle", bundle(env, "pod1")],
      { cwd: "/", env: env.env });
    assert.equal(r.code, 0, String(r.stderr));
    // The pid file still names the idle spare, so that a `start` finding it hung can kill it.
    assert.equal(await readySpare(env), first);
    process.kill(first, "SIGSTOP");
    await start(env, "pod2");
    await waitFor(() => !alive(first), { what: "the hung spare to be killed" });
  });

  void test("a spare of another build is never adopted, and exits", async (t) => {
    const env = await setup(t);
    await start(env, "pod1");
    const spare = await waitFor(() => readySpare(env), { what: "the spare" });
    const answer = await adopt(env.spare, request(env, "pod2", { build: "another-build" }), 2000);
    assert.deepEqual(answer, { ok: false, reason: "build" });
    await waitFor(() => !alive(spare), { what: "the refusing spare to exit" });
    assert.equal(existsSync(path.join(env.sockDir, "pod2")), false, "it bound no pod socket");
    assert.equal(existsSync(env.spare), false, "its socket is gone");
  });

  void test("a spare whose pod is served already answers live and stays a spare", async (t) => {
    const env = await setup(t);
    const a = await start(env, "pod1");
    const spare = await waitFor(() => readySpare(env), { what: "the spare" });
    const answer = await adopt(env.spare, request(env, "pod1b", { socket: a.sock }), 2000);
    assert.deepEqual(answer, { ok: false, reason: "live" });
    assert.equal(await readySpare(env), spare, "still the idle spare");
    const b = await start(env, "pod2");
    assert.equal(await shimPid(b.sock), spare, "and adopted by the next pod");
  });

  void test("a hung spare (SIGSTOP) is killed and the pod gets a daemon within the bound", async (t) => {
    const env = await setup(t);
    await start(env, "pod1");
    const spare = await waitFor(() => readySpare(env), { what: "the spare" });
    process.kill(spare, "SIGSTOP");
    const b = await start(env, "pod2");
    const daemon = await shimPid(b.sock);
    assert.notEqual(daemon, spare, "a daemon was spawned for the pod");
    assert.equal(alive(spare), false, "the hung spare was killed");
    assert.ok(b.ms < 4000, `start took ${Math.round(b.ms)} ms`);
    await waitFor(() => readySpare(env), { what: "a new spare" });
    t.diagnostic(`start with a hung spare: ${Math.round(b.ms)} ms`);
  });

  void test("a spare killed with SIGKILL costs the pod nothing", async (t) => {
    const env = await setup(t);
    await start(env, "pod1");
    const spare = await waitFor(() => readySpare(env), { what: "the spare" });
    process.kill(spare, "SIGKILL");
    await waitFor(() => !alive(spare), { what: "the spare to die" });
    assert.ok(existsSync(env.spare), "its socket file is left behind");
    const b = await start(env, "pod2");
    assert.notEqual(await shimPid(b.sock), spare);
    await waitFor(() => readySpare(env), { what: "a new spare" });
  });

  void test("a spare exits after its idle time, and when containerd is gone", async (t) => {
    const env = await setup(t, { SHIM_TS_WARM_IDLE_MS: "800" });
    await start(env, "pod1");
    const spare = await waitFor(() => readySpare(env), { what: "the spare" });
    await waitFor(() => !alive(spare), { what: "the idle spare to exit", timeoutMs: 5000 });
    assert.equal(existsSync(env.spare), false);
    assert.equal(existsSync(sparePidFile(env.spare)), false);

    const env2 = await setup(t);
    await start(env2, "pod1");
    const spare2 = await waitFor(() => readySpare(env2), { what: "the spare" });
    env2.containerd.close();
    await waitFor(() => !alive(spare2), { what: "the spare to exit once containerd is gone", timeoutMs: 10_000 });
    assert.equal(existsSync(env2.spare), false);
  });
});
