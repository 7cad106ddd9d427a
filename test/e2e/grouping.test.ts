// One shim per pod (protocol.md §2.6, §6.4), driving bin/containerd-shim-ts-v2 directly as containerd would:
// `start` in bundles that carry the same io.kubernetes.cri.sandbox-id, in sequence and all at once, and a
// bare Create on a new connection for a container the shim never saw a `start` for (containerd 2.0.0-2.0.5,
// and 2.x with a version-3 shim). Sockets go to a private dir (SHIM_TS_SOCKET_DIR); runc root, cgroups and
// namespace are per run and removed afterwards.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmdirSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, suite, test, type TestContext } from "node:test";
import { containerd, google } from "../../src/gen/task.js";
import { SOCKET_DIR_ENV } from "../../src/shim/socket/address.js";
import net from "node:net";
import { Client, Server, unary } from "../../src/ttrpc/index.js";
import { runShim, daemonsFor, alive, tempDir } from "../helpers/shim.js";
import { makeBundle, requireRoot } from "../helpers/rootfs.js";
import { runCapture } from "../helpers/containerd.js";
import { waitFor } from "../helpers/wait.js";

const T = containerd.task.v2;
const NS = `grp-${randomBytes(3).toString("hex")}`;
const SANDBOX_ID = "io.kubernetes.cri.sandbox-id";
const CONTAINER_TYPE = "io.kubernetes.cri.container-type";

interface Env { root: string; grpc: string; env: NodeJS.ProcessEnv; sockets: Set<string>; topics: string[] }

/** Temp dir, private socket dir, and containerd's events service (Forward) at TTRPC_ADDRESS, recording topics. */
async function setup(t: TestContext): Promise<Env> {
  requireRoot(["runc"]);
  const root = await tempDir(t, "shim-grp-");
  const sockets = new Set<string>();
  const topics: string[] = [];
  const events = new Server();
  const E = containerd.services.events.ttrpc.v1;
  events.register("containerd.services.events.ttrpc.v1.Events", {
    Forward: unary(E.ForwardRequest, google.protobuf.Empty, (req) => { topics.push(req.envelope?.topic ?? ""); return {}; }),
  });
  const listener = net.createServer();
  const ttrpc = path.join(root, "c.sock.ttrpc");
  await new Promise<void>((resolve) => listener.listen(ttrpc, resolve));
  events.serve(listener);
  t.after(async () => {
    for (const s of sockets) for (const pid of daemonsFor(s)) process.kill(pid, "SIGKILL");
    await waitFor(() => [...sockets].every((s) => daemonsFor(s).length === 0), { what: "the test's daemons to exit" });
    events.close();
  });
  // One daemon per pod is what this file tests, in every lane (grouping-namespace.test.ts has the other mode).
  const env = { ...process.env, [SOCKET_DIR_ENV]: path.join(root, "s"), TTRPC_ADDRESS: ttrpc, SHIM_TS_GROUPING: "pod" };
  return { root, grpc: path.join(root, "c.sock"), env, sockets, topics };
}

/** A bundle of pod `pod` (the pause container when id = pod): config.json only, or runnable (busybox, host net). */
async function podBundle(env: Env, id: string, pod: string, runnable = false): Promise<string> {
  const dir = path.join(env.root, "bundles", id);
  await mkdir(dir, { recursive: true });
  const annotations = { [SANDBOX_ID]: pod, [CONTAINER_TYPE]: id === pod ? "sandbox" : "container" };
  if (!runnable) {
    await writeFile(path.join(dir, "config.json"), JSON.stringify({ ociVersion: "1.0.2", annotations }));
    return dir;
  }
  return makeBundle(dir, { args: ["sleep", "1000"], hostNetwork: true, annotations, cgroupsPath: `/${NS}/${id}` });
}

async function start(env: Env, id: string, bundle: string): Promise<{ code: number | null; text: string; stderr: string; ms: number }> {
  const r = await runShim(["-namespace", NS, "-address", env.grpc, "-publish-binary", "/bin/true", "-id", id, "start"],
    { cwd: bundle, env: env.env, timeoutMs: 30_000 });
  const text = r.stdout.toString("utf8");
  if (text.startsWith("unix://")) env.sockets.add(text.slice("unix://".length));
  return { code: r.code, text, stderr: r.stderr, ms: r.ms };
}

/** `start` of pod `pod`'s sandbox in a runnable bundle; the daemon it spawned and its socket. */
async function startPod(env: Env, pod: string): Promise<{ podBundleDir: string; s: { text: string }; sock: string; daemon: number }> {
  const podBundleDir = await podBundle(env, pod, pod, true);
  const s = await start(env, pod, podBundleDir);
  assert.equal(s.code, 0, s.stderr);
  const sock = s.text.slice("unix://".length);
  const [daemon] = daemonsFor(sock);
  assert.ok(daemon, "a daemon serves the pod");
  return { podBundleDir, s, sock, daemon };
}

const call = <Req, Res>(c: Client, svc: string, m: string, req: { encode(v: Req): { finish(): Uint8Array } }, v: Req,
  res: { decode(b: Uint8Array): Res }): Promise<Res> => c.callTyped(svc, m, req, v, res, { timeoutMs: 15_000 });

/** Create + Start of `id` on `client` through service `svc`; returns the init pid. */
async function run(client: Client, svc: string, id: string, bundle: string): Promise<number> {
  const created = await call(client, svc, "Create", T.CreateTaskRequest, { id, bundle }, T.CreateTaskResponse);
  const started = await call(client, svc, "Start", T.StartRequest, { id }, T.StartResponse);
  assert.equal(started.pid, created.pid);
  const state = await call(client, svc, "State", T.StateRequest, { id }, T.StateResponse);
  assert.equal(state.status, containerd.v1.types.Status.RUNNING, `${id} is running`);
  return started.pid;
}

/** Kill -9, Wait and Delete of `id`; returns the exit status Delete reports. */
async function remove(client: Client, svc: string, id: string): Promise<number> {
  const waited = call(client, svc, "Wait", T.WaitRequest, { id }, T.WaitResponse);
  await call(client, svc, "Kill", T.KillRequest, { id, signal: 9 }, google.protobuf.Empty);
  assert.equal((await waited).exitStatus, 137);
  return (await call(client, svc, "Delete", T.DeleteRequest, { id }, T.DeleteResponse)).exitStatus;
}

function ppid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

void suite("one shim per pod", { timeout: 120_000 }, () => {
  after(async () => {
    const root = `/run/containerd/runc/${NS}`;
    for (const id of existsSync(root) ? readdirSync(root) : []) await runCapture("runc", ["--root", root, "delete", "--force", id]);
    await rm(root, { recursive: true, force: true });
    for (const ctl of readdirSync("/sys/fs/cgroup")) {
      const dir = path.join("/sys/fs/cgroup", ctl, NS);
      if (!existsSync(dir)) continue;
      for (const sub of readdirSync(dir, { withFileTypes: true })) if (sub.isDirectory()) rmdirSync(path.join(dir, sub.name));
      rmdirSync(dir);
    }
  });

  void test("gives two bundles of one sandbox id the same address and one daemon", async (t) => {
    const env = await setup(t);
    const a = await start(env, "pod1", await podBundle(env, "pod1", "pod1"));
    const bundleB = await podBundle(env, "app1", "pod1");
    const b = await start(env, "app1", bundleB);
    assert.deepEqual([a.code, b.code, a.stderr, b.stderr], [0, 0, "", ""]);
    assert.equal(b.text, a.text);
    assert.equal(readFileSync(path.join(bundleB, "address"), "utf8"), a.text);
    const other = await start(env, "pod2", await podBundle(env, "pod2", "pod2"));
    assert.notEqual(other.text, a.text, "another pod gets another shim");
    assert.equal(daemonsFor(a.text.slice("unix://".length)).length, 1);
    t.diagnostic(`start wall time: new daemon ${Math.round(a.ms)} ms, joining ${Math.round(b.ms)} ms`);
  });

  void test("starts one daemon when a pod's containers start all at once", async (t) => {
    const env = await setup(t);
    for (const pod of ["podA", "podB", "podC", "podD", "podE"]) {
      const ids = [pod, ...[1, 2, 3, 4, 5].map((n) => `${pod}-c${n}`)];
      const bundles = await Promise.all(ids.map((id) => podBundle(env, id, pod)));
      const results = await Promise.all(ids.map((id, i) => start(env, id, bundles[i]!)));
      for (const r of results) assert.deepEqual([r.code, r.stderr], [0, ""], `start answered ${r.text}`);
      assert.equal(new Set(results.map((r) => r.text)).size, 1, `one address for ${pod}: ${results.map((r) => r.text).join(" ")}`);
      const sock = results[0]!.text.slice("unix://".length);
      assert.equal(daemonsFor(sock).length, 1, `daemons for ${pod}`);
      for (const b of bundles) assert.equal(readFileSync(path.join(b, "address"), "utf8"), results[0]!.text);
    }
  });

  void test("a start that joined holds the daemon through the last container's Shutdown until its own Create", async (t) => {
    // The race seen with namespace grouping: `start` finds the daemon live and prints its address, then the
    // daemon's last container goes and containerd's Shutdown makes it exit before the new container's Create.
    const env = await setup(t);
    const pod = "podJ";
    const { podBundleDir, s, sock, daemon } = await startPod(env, pod);
    const v2 = "containerd.task.v2.Task";
    const podConn = await Client.connect(sock);
    await run(podConn, v2, pod, podBundleDir);
    const appBundle = await podBundle(env, "appJ", pod, true);
    const joined = await start(env, "appJ", appBundle);
    assert.deepEqual([joined.code, joined.text], [0, s.text], joined.stderr);
    assert.equal(await remove(podConn, v2, pod), 137);
    await call(podConn, v2, "Shutdown", T.ShutdownRequest, { id: pod }, google.protobuf.Empty);
    podConn.close();
    const appConn = await Client.connect(sock);
    const appPid = await run(appConn, v2, "appJ", appBundle);
    assert.ok(alive(daemon), "the daemon that answered the join serves the container");
    assert.equal(ppid(appPid), daemon);
    assert.equal(await remove(appConn, v2, "appJ"), 137);
    // Shutdown was asked for already (it is sticky): the daemon goes once it holds nothing.
    await waitFor(() => !alive(daemon) && !existsSync(sock), { what: "the daemon to exit and remove its socket" });
    appConn.close();
  });

  void test("the daemon holds the id it was started for until its Create, while a joined container comes and goes", async (t) => {
    // Seen with namespace grouping (concurrent ctr run): the `start` for par7 spawned the daemon, par8 joined,
    // ran and was deleted, and its Shutdown made the daemon exit before par7's Create ("ttrpc: closed").
    const env = await setup(t);
    const pod = "podF";
    const { podBundleDir, s, sock, daemon } = await startPod(env, pod);
    const v2 = "containerd.task.v2.Task";
    const appBundle = await podBundle(env, "appF", pod, true);
    const joined = await start(env, "appF", appBundle);
    assert.deepEqual([joined.code, joined.text], [0, s.text], joined.stderr);
    const appConn = await Client.connect(sock);
    await run(appConn, v2, "appF", appBundle);
    assert.equal(await remove(appConn, v2, "appF"), 137);
    await call(appConn, v2, "Shutdown", T.ShutdownRequest, { id: "appF" }, google.protobuf.Empty);
    appConn.close();
    const podConn = await Client.connect(sock);
    const podPid = await run(podConn, v2, pod, podBundleDir);
    assert.equal(ppid(podPid), daemon, "the daemon it was started for serves the pod");
    assert.equal(await remove(podConn, v2, pod), 137);
    await waitFor(() => !alive(daemon) && !existsSync(sock), { what: "the daemon to exit and remove its socket" });
    podConn.close();
  });

  void test("runs a container created on a new connection without a start of its own (v2 and v3 services)", async (t) => {
    const env = await setup(t);
    const pod = "podX";
    const sandboxBundle = await podBundle(env, pod, pod, true);
    const s = await start(env, pod, sandboxBundle);
    assert.equal(s.code, 0, s.stderr);
    const sock = s.text.slice("unix://".length);
    const [daemon] = daemonsFor(sock);
    assert.ok(daemon, "a daemon serves the pod");
    const sandboxConn = await Client.connect(sock);
    const v2 = "containerd.task.v2.Task";
    const v3 = "containerd.task.v3.Task";
    const podPid = await run(sandboxConn, v2, pod, sandboxBundle);
    // Like containerd 2.x: no `start`, no address file from the shim; a fresh connection per container.
    const apps: { id: string; svc: string; conn: Client; pid: number }[] = [];
    for (const [id, svc] of [["appV2", v2], ["appV3", v3]] as const) {
      const bundle = await podBundle(env, id, pod, true);
      const conn = await Client.connect(sock);
      apps.push({ id, svc, conn, pid: await run(conn, svc, id, bundle) });
      assert.equal(existsSync(path.join(bundle, "address")), false);
    }
    assert.deepEqual(daemonsFor(sock), [daemon], "still one daemon");
    for (const pid of [podPid, ...apps.map((a) => a.pid)]) assert.equal(ppid(pid), daemon, `parent of ${pid}`);
    const pids = await call(apps[1]!.conn, v3, "Pids", T.PidsRequest, { id: "appV3" }, T.PidsResponse);
    assert.ok(pids.processes.some((p) => p.pid === apps[1]!.pid));
    for (const a of apps) {
      assert.equal(await remove(a.conn, a.svc, a.id), 137);
      a.conn.close();                           // containerd runs no `delete` binary for these connections
    }
    assert.ok(alive(daemon), "the pod's shim outlives its app containers");
    assert.equal(await remove(sandboxConn, v2, pod), 137);
    await call(sandboxConn, v2, "Shutdown", T.ShutdownRequest, { id: pod }, google.protobuf.Empty)
      .catch((err: unknown) => { if (!/closed/.test(String(err))) throw err; });
    sandboxConn.close();
    await waitFor(() => !alive(daemon) && !existsSync(sock), { what: "the daemon to exit and remove its socket" });
    for (const topic of ["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"]) {
      assert.equal(env.topics.filter((x) => x === topic).length, 3, `${topic} events in ${JSON.stringify(env.topics)}`);
    }
  });
});
