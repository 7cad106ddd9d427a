// Our ttrpc client and server against Go's: drives containerd 1.6.20's containerd-shim-runc-v2 through a
// whole task lifecycle, and receives the events it publishes on a ttrpc Events server of ours.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, constants as fsc, openSync, readFileSync, readdirSync, readlinkSync, realpathSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { Socket, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, test, type TestContext } from "node:test";
import { containerd, google } from "../../src/gen/task.js";
import { Client, Server, unary } from "../../src/ttrpc/index.js";
import { REPO_ROOT } from "../helpers/image.js";
import { makeBundle, requireRoot } from "../helpers/rootfs.js";

/** Where scripts/install-deps.sh unpacks Debian 12's containerd, under this checkout. */
const SHIM = join(REPO_ROOT, ".deps", "containerd", "bookworm", "usr", "bin", "containerd-shim-runc-v2");
const TASK = "containerd.task.v2.Task";
const NS = "interop";
const v2 = containerd.task.v2;

/** Text arriving on a FIFO held open O_RDWR|O_NONBLOCK (so the writer's open never blocks and we never see EOF). */
function readFifo(t: TestContext, path: string): { text: () => string; waitFor: (s: string, ms: number) => Promise<void> } {
  execFileSync("mkfifo", [path]);
  const sock = new Socket({ fd: openSync(path, fsc.O_RDWR | fsc.O_NONBLOCK), readable: true, writable: false });
  t.after(() => sock.destroy());
  let text = "";
  sock.on("data", (c: Buffer) => (text += c.toString()));
  sock.on("error", () => {});
  const waitFor = (s: string, ms: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (!text.includes(s)) return;
        clearTimeout(timer);
        sock.off("data", check);
        resolve();
      };
      const timer = setTimeout(() => reject(new Error(`No ${JSON.stringify(s)} on ${path} within ${ms} ms, got ${JSON.stringify(text)}`)), ms);
      sock.on("data", check);
      check();
    });
  return { text: () => text, waitFor };
}

/** Runs the shim's `start` (stdin from /dev/null: the Go shim reads stdin to EOF) and returns what it printed. */
function shimStart(args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(SHIM, args, { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
    child.on("error", reject);
    child.on("close", (code, sig) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`Shim start failed (code ${code}, signal ${sig}): ${err}${out}`));
    });
  });
}

/**
 * Pids of Go shim processes started for container `id` (by this test: the id is unique to it). Matched by
 * executable: the daemon is re-executed from os.Executable(), the resolved path (.deps may be a symlink).
 */
function shimPidsFor(id: string): number[] {
  const exe = realpathSync(SHIM);
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (readlinkSync(`/proc/${entry}/exe`) === exe && argv.includes(id)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Our Events service on `path`: records every forwarded envelope's topic, in order. */
async function eventsServer(t: TestContext, path: string): Promise<{ topics: string[]; waitFor: (topic: string, ms: number) => Promise<void> }> {
  const topics: string[] = [];
  const waiters: Array<() => void> = [];
  const server = new Server();
  server.register("containerd.services.events.ttrpc.v1.Events", {
    Forward: unary(containerd.services.events.ttrpc.v1.ForwardRequest, google.protobuf.Empty, (req) => {
      assert.equal(req.envelope?.namespace, NS);
      topics.push(req.envelope?.topic ?? "");
      for (const w of waiters.splice(0)) w();
      return {};
    }),
  });
  const listener = createServer();
  await new Promise<void>((resolve) => listener.listen(path, resolve));
  server.serve(listener);
  t.after(() => server.close());
  const waitFor = async (topic: string, ms: number): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!topics.includes(topic)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`No ${topic} event within ${ms} ms; got ${topics.join(", ")}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  };
  return { topics, waitFor };
}

void suite("containerd-shim-runc-v2 1.6.20 over our ttrpc", () => {
  void test("runs a task lifecycle and publishes its events to our server", async (t) => {
    requireRoot(["runc", "mkfifo"]);
    if (!existsSync(SHIM)) throw new Error(`Missing Go shim "${SHIM}" (run scripts/install-deps.sh)`);
    const dir = await mkdtemp(join(tmpdir(), "interop-"));
    const id = `interop-${process.pid}-${Date.now()}`;
    let address = "";
    t.after(async () => {
      for (const pid of shimPidsFor(id)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      try {
        execFileSync("runc", ["--root", `/run/containerd/runc/${NS}`, "delete", "-f", id], { stdio: "ignore" });
      } catch {
        // already deleted
      }
      if (address !== "") await rm(address, { force: true });
      await rm(dir, { recursive: true, force: true });
    });

    const bundle = await makeBundle(join(dir, "bundle"), {
      args: ["sh", "-c", "echo hi; while [ ! -e /tmp/go ]; do sleep 0.02; done; exit 3"],
    });
    const shimLog = readFifo(t, join(bundle, "log"));
    const stdout = readFifo(t, join(dir, "stdout"));
    readFifo(t, join(dir, "stderr"));
    const events = await eventsServer(t, join(dir, "events.sock"));

    const startArgs = ["-namespace", NS, "-address", join(dir, "fake.sock"), "-publish-binary", "/bin/true", "-id", id, "start"];
    const env = { ...process.env, TTRPC_ADDRESS: join(dir, "events.sock") };
    const printed = (await shimStart(startArgs, { cwd: bundle, env, timeoutMs: 10_000 })).trim();
    assert.match(printed, /^unix:\/\/\/.+/, `start printed ${JSON.stringify(printed)}; shim log: ${shimLog.text()}`);
    address = printed.slice("unix://".length);
    const client = await Client.connect(address, { signal: AbortSignal.timeout(5000) });
    t.after(() => client.close());
    const opts = { timeoutMs: 10_000, metadata: { "containerd-namespace-ttrpc": NS } };
    const call = <Req, Res>(m: string, req: { encode(v: Req): { finish(): Uint8Array } }, v: Req, res: { decode(b: Uint8Array): Res }): Promise<Res> =>
      client.callTyped(TASK, m, req, v, res, opts);

    const created = await call("Create", v2.CreateTaskRequest, { id, bundle, stdout: join(dir, "stdout"), stderr: join(dir, "stderr") }, v2.CreateTaskResponse);
    assert.ok(created.pid > 0, "Create returns the init pid");
    const conn = await call("Connect", v2.ConnectRequest, { id }, v2.ConnectResponse);
    assert.deepEqual(shimPidsFor(id).filter((p) => p === conn.shimPid), [conn.shimPid], "Connect names the shim daemon");
    assert.equal(conn.taskPid, created.pid);
    const start = await call("Start", v2.StartRequest, { id }, v2.StartResponse);
    assert.equal(start.pid, created.pid);
    await stdout.waitFor("hi\n", 5000);
    const running = await call("State", v2.StateRequest, { id }, v2.StateResponse);
    assert.deepEqual([running.id, running.status, running.pid], [id, containerd.v1.types.Status.RUNNING, created.pid]);

    // Wait blocks on this connection while other calls go through it.
    const wait = call("Wait", v2.WaitRequest, { id }, v2.WaitResponse);
    assert.equal((await call("State", v2.StateRequest, { id }, v2.StateResponse)).status, containerd.v1.types.Status.RUNNING);
    await writeFile(join(bundle, "rootfs", "tmp", "go"), "");
    const waited = await wait;
    assert.equal(waited.exitStatus, 3);
    assert.ok((waited.exitedAt?.seconds ?? 0) > 0);
    const stopped = await call("State", v2.StateRequest, { id }, v2.StateResponse);
    assert.deepEqual([stopped.status, stopped.exitStatus], [containerd.v1.types.Status.STOPPED, 3]);

    await assert.rejects(client.call(TASK, "NoSuchMethod", new Uint8Array(0), opts), { code: "Unimplemented", message: "method NoSuchMethod" });
    await assert.rejects(client.call("containerd.task.v9.Task", "State", new Uint8Array(0), opts), { code: "Unimplemented" });
    await assert.rejects(call("State", v2.StateRequest, { id: "nope" }, v2.StateResponse), { code: "NotFound" });

    const deleted = await call("Delete", v2.DeleteRequest, { id }, v2.DeleteResponse);
    assert.deepEqual([deleted.pid, deleted.exitStatus], [created.pid, 3]);
    await events.waitFor("/tasks/delete", 5000);
    const lifecycle = events.topics.filter((x) => ["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"].includes(x));
    assert.deepEqual(lifecycle, ["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"]);

    const closed = new Promise<void>((resolve) => client.onClose(resolve));
    await call("Shutdown", v2.ShutdownRequest, { id }, google.protobuf.Empty).catch((err: Error & { code?: string }) => {
      // The shim may exit before its answer is flushed; the connection then closes under the call.
      if (err.code !== "Unavailable") throw err;
    });
    await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error("Shim did not exit after Shutdown")), 5000).unref())]);
  });
});
