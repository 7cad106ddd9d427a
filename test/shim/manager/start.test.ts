import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, readSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { suite, test, type TestContext } from "node:test";
import { containerd as boot } from "../../../src/gen/bootstrap.js";
import { containerd, google } from "../../../src/gen/task.js";
import { SOCKET_DIR_ENV } from "../../../src/shim/socket/address.js";
import { Client } from "../../../src/ttrpc/index.js";
import { waitFor } from "../../helpers/wait.js";
import { alive, daemonsFor, requireRoot, runShim, tempDir } from "../../helpers/shim.js";

const T = containerd.task.v2;
const sha = (s: string): string => createHash("sha256").update(s).digest("hex");

interface Env {
  root: string;
  sockDir: string;
  grpc: string;
  env: NodeJS.ProcessEnv;
  sockets: Set<string>;
}

async function setup(t: TestContext): Promise<Env> {
  const root = await tempDir(t, "shim-start-");
  const sockDir = path.join(root, "s");
  const sockets = new Set<string>();
  t.after(async () => {
    for (const p of sockets) {
      for (const pid of daemonsFor(p)) process.kill(pid, "SIGKILL");
    }
    await waitFor(() => [...sockets].every((p) => daemonsFor(p).length === 0), { what: "daemons to exit", timeoutMs: 5000 });
  });
  const env = { ...process.env, [SOCKET_DIR_ENV]: sockDir, TTRPC_ADDRESS: path.join(root, "c.sock.ttrpc") };
  return { root, sockDir, grpc: path.join(root, "c.sock"), env, sockets };
}

function bundle(env: Env, id: string, annotations?: Record<string, string>): string {
  const dir = path.join(env.root, "bundles", id);
  mkdirSync(dir, { recursive: true });
  if (annotations) writeFileSync(path.join(dir, "config.json"), JSON.stringify({ ociVersion: "1.0.2", annotations }));
  return dir;
}

async function start(env: Env, id: string, cwd: string, stdin?: Uint8Array, publish = "/bin/true", extraEnv: NodeJS.ProcessEnv = {}) {
  const r = await runShim(["-namespace", "t", "-address", env.grpc, "-publish-binary", publish, "-id", id, "start"], {
    cwd,
    env: { ...env.env, ...extraEnv },
    ...(stdin ? { stdin } : {}),
  });
  const text = r.stdout.toString("utf8");
  if (text.startsWith("unix://")) env.sockets.add(text.slice("unix://".length));
  return { ...r, text };
}

async function connect(sock: string): Promise<{ client: Client; shimPid: number }> {
  const client = await Client.connect(sock);
  const res = await client.callTyped("containerd.task.v2.Task", "Connect", T.ConnectRequest, { id: "x" }, T.ConnectResponse, {
    timeoutMs: 5000,
  });
  return { client, shimPid: res.shimPid };
}

/** Shutdown as containerd sends it: naming the id the daemon was started for (it holds that id until then). */
async function shutdown(client: Client, id: string, strict = false): Promise<void> {
  try {
    await client.callTyped("containerd.task.v2.Task", "Shutdown", T.ShutdownRequest, { id }, google.protobuf.Empty, {
      timeoutMs: 5000,
    });
  } catch (err) {
    // containerd treats "ttrpc: closed" as success too (protocol.md §2.7); we answer first all the same
    if (strict || !/closed/.test(String(err))) throw err;
  } finally {
    client.close();
  }
}

void suite("shim start", () => {
  void test("prints the bare address, writes the address file and leaves a daemon serving it", async (t) => {
    requireRoot("the start path");
    const env = await setup(t);
    const dir = bundle(env, "x");
    const r = await start(env, "x", dir);
    assert.equal(r.stderr, "");
    assert.equal(r.code, 0);
    const sock = path.join(env.sockDir, sha(`${env.grpc}/t/x`));
    assert.equal(r.text, `unix://${sock}`);
    assert.equal(readFileSync(path.join(dir, "address"), "utf8"), r.text);
    assert.equal(statSync(sock).mode & 0o777, 0o600);
    assert.equal(statSync(env.sockDir).mode & 0o777, 0o700);
    t.diagnostic(`start took ${r.ms.toFixed(0)} ms`);

    const { client, shimPid } = await connect(sock);
    assert.deepEqual(daemonsFor(sock), [shimPid]);
    const environ = readFileSync(`/proc/${shimPid}/environ`, "utf8").split("\0");
    assert.ok(environ.includes(`TTRPC_ADDRESS=${env.env["TTRPC_ADDRESS"]}`));
    assert.equal(readFileSync(`/proc/${shimPid}/cwd/address`, "utf8"), r.text, "daemon cwd is the bundle");
    await shutdown(client, "x", true);
    await waitFor(() => !alive(shimPid), { what: "the daemon to exit after Shutdown" });
    assert.equal(existsSync(sock), false, "socket removed");
  });

  void test("reuses the daemon of a pod for a second container of that pod", async (t) => {
    requireRoot("the start path");
    const env = await setup(t);
    const pod = { "io.kubernetes.cri.sandbox-id": "pod1" };
    const first = await start(env, "pod1", bundle(env, "pod1", pod));
    const dirB = bundle(env, "app", { ...pod, "io.kubernetes.cri.container-type": "container" });
    const second = await start(env, "app", dirB);
    assert.equal(second.code, 0);
    assert.equal(second.stderr, "");
    assert.equal(second.text, first.text);
    assert.equal(second.text, `unix://${path.join(env.sockDir, sha(`${env.grpc}/t/pod1`))}`);
    assert.equal(readFileSync(path.join(dirB, "address"), "utf8"), second.text);
    const sock = second.text.slice("unix://".length);
    const { client, shimPid } = await connect(sock);
    assert.deepEqual(daemonsFor(sock), [shimPid], "one daemon for the pod");
    // `app` joined the daemon (join.ts) and is held until its Create or its own Shutdown, as containerd
    // sends one per container: the pod's alone does not end the daemon.
    const other = await Client.connect(sock);
    await shutdown(other, "pod1", true);
    await shutdown(client, "app");
    await waitFor(() => !alive(shimPid), { what: "the daemon to exit" });
  });

  void test("groups by io.containerd.runc.v2.group before the sandbox id", async (t) => {
    requireRoot("the start path");
    const env = await setup(t);
    const dir = bundle(env, "g1", { "io.containerd.runc.v2.group": "grp", "io.kubernetes.cri.sandbox-id": "pod" });
    const r = await start(env, "g1", dir);
    assert.equal(r.text, `unix://${path.join(env.sockDir, sha(`${env.grpc}/t/grp`))}`);
  });

  void test("replaces a stale socket file", async (t) => {
    requireRoot("the start path");
    const env = await setup(t);
    const sock = path.join(env.sockDir, sha(`${env.grpc}/t/stale`));
    mkdirSync(env.sockDir, { recursive: true, mode: 0o700 });
    // A listener that exits without closing leaves its socket file behind, as a crashed shim does.
    const made = spawnSync(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(sock)}, () => process.exit(0))`]);
    assert.equal(made.status, 0);
    assert.ok(statSync(sock).isSocket());
    const r = await start(env, "stale", bundle(env, "stale"));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.text, `unix://${sock}`);
    const { client, shimPid } = await connect(sock);
    await shutdown(client, "stale");
    await waitFor(() => !alive(shimPid), { what: "the daemon to exit" });
  });

  void test("answers BootstrapParams with a BootstrapResult and hands the ttrpc address to the daemon", async (t) => {
    requireRoot("the start path");
    const env = await setup(t);
    const B = boot.runtime.bootstrap.v1;
    const sockDir = path.join(env.root, "s23");
    const params = B.BootstrapParams.encode({
      instanceId: "b1",
      namespace: "t",
      containerdTtrpcAddress: path.join(env.root, "from-bootstrap.ttrpc"),
      socketDir: sockDir,
    }).finish();
    const r = await start(env, "b1", bundle(env, "b1"), params);
    assert.equal(r.code, 0, r.stderr);
    const res = B.BootstrapResult.decode(r.stdout);
    const sock = path.join(sockDir, sha(`${env.grpc}/t/b1`));
    assert.equal(res.version, 3, "2.3+ (bootstrap input) is answered with task API version 3");
    assert.equal(res.protocol, "ttrpc");
    assert.equal(res.address, `unix://${sock}`);
    env.sockets.add(sock);
    const { client, shimPid } = await connect(sock);
    const environ = readFileSync(`/proc/${shimPid}/environ`, "utf8").split("\0");
    assert.ok(environ.includes(`TTRPC_ADDRESS=${path.join(env.root, "from-bootstrap.ttrpc")}`));
    await shutdown(client, "b1");
  });

  void test("answers version 3 as JSON to containerd 2.x and a plain address to 1.x or on request", async (t) => {
    requireRoot("the start path");
    const env = await setup(t);
    const fake = (name: string, line: string): string => {
      const p = path.join(env.root, name);
      writeFileSync(p, `#!/bin/sh\necho '${line}'\n`, { mode: 0o755 });
      return p;
    };
    const v2x = fake("containerd-2", "containerd github.com/containerd/containerd/v2 2.1.9+unknown ");
    const v1x = fake("containerd-1", "containerd github.com/containerd/containerd 1.7.24~ds1 ");
    const two = await start(env, "v3a", bundle(env, "v3a"), undefined, v2x);
    assert.equal(two.code, 0, two.stderr);
    const sock = path.join(env.sockDir, sha(`${env.grpc}/t/v3a`));
    env.sockets.add(sock);
    assert.deepEqual(JSON.parse(two.text), { version: 3, address: `unix://${sock}`, protocol: "ttrpc" });
    assert.equal(readFileSync(path.join(env.root, "bundles", "v3a", "address"), "utf8"), `unix://${sock}`);
    const one = await start(env, "v3b", bundle(env, "v3b"), undefined, v1x);
    assert.match(one.text, /^unix:\/\/[^\n]+$/, "1.x gets the plain address");
    const forced = await start(env, "v3c", bundle(env, "v3c"), undefined, v2x, { SHIM_TS_MAX_VERSION: "2" });
    assert.match(forced.text, /^unix:\/\/[^\n]+$/, "SHIM_TS_MAX_VERSION=2 forces the plain address");
    for (const id of ["v3a", "v3b", "v3c"]) {
      const { client } = await connect(path.join(env.sockDir, sha(`${env.grpc}/t/${id}`)));
      await shutdown(client, id);
    }
  });

  void test("moves the daemon into shim_cgroup", async (t) => {
    requireRoot("shim_cgroup placement");
    const env = await setup(t);
    const name = `shim-ts-test-${process.pid}-${Date.now()}`;
    const cg = existsSync("/sys/fs/cgroup/cgroup.controllers") ? `/sys/fs/cgroup/${name}` : `/sys/fs/cgroup/pids/${name}`;
    mkdirSync(cg);
    const opts = containerd.runc.v1.Options.encode({ shimCgroup: `/${name}` }).finish();
    const stdin = google.protobuf.Any.encode({ typeUrl: "containerd.runc.v1.Options", value: opts }).finish();
    const r = await start(env, "cg", bundle(env, "cg"), stdin);
    assert.equal(r.code, 0, r.stderr);
    const { client, shimPid } = await connect(r.text.slice("unix://".length));
    assert.match(readFileSync(`/proc/${shimPid}/cgroup`, "utf8"), new RegExp(`:/${name}$`, "m"));
    await shutdown(client, "cg");
    await waitFor(() => !alive(shimPid), { what: "the daemon to exit" });
    await waitFor(() => (rmdirSync(cg), true), { what: `rmdir ${cg}` });
  });

  void test("fails with exit status 1 and a message on bad flags", async (t) => {
    const dir = await tempDir(t, "shim-flags-");
    const r = await runShim(["-namespace", "t", "-nope", "start"], { cwd: dir });
    assert.equal(r.code, 1);
    assert.equal(r.stdout.length, 0);
    assert.match(r.stderr, /Unknown flag "-nope"/);
  });
});

void suite("shim daemon", () => {
  void test("does not inherit stray fds of the start process", async (t) => {
    requireRoot("the start path");
    const env = await setup(t);
    const r = await runShim(["-namespace", "t", "-address", env.grpc, "-publish-binary", "/bin/true", "-id", "fd", "start"], {
      cwd: bundle(env, "fd"),
      env: env.env,
      extraPipe: true,
    });
    assert.equal(r.code, 0, r.stderr);
    env.sockets.add(r.stdout.toString("utf8").slice("unix://".length));
  });

  void test("logs to the bundle's log FIFO and exits on SIGTERM, removing its socket", async (t) => {
    requireRoot("the start path");
    const env = await setup(t);
    const dir = bundle(env, "lg");
    const fifo = path.join(dir, "log");
    assert.equal(spawnSync("mkfifo", [fifo]).status, 0);
    // containerd holds the FIFO O_RDWR and copies what it reads (protocol.md §2.3).
    const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    t.after(() => closeSync(fd));
    let text = "";
    const drain = (): string => {
      const buf = Buffer.alloc(65536);
      try {
        for (let n; (n = readSync(fd, buf)) > 0; ) text += buf.toString("utf8", 0, n);
      } catch {
        // EAGAIN: nothing more for now
      }
      return text;
    };
    const r = await start(env, "lg", dir);
    assert.equal(r.code, 0, r.stderr);
    const sock = r.text.slice("unix://".length);
    await waitFor(() => drain().includes("shim serving"), { what: "the daemon's first log line" });
    const pid = daemonsFor(sock)[0] ?? 0;
    assert.ok(pid > 0);
    process.kill(pid, "SIGTERM");
    await waitFor(() => !alive(pid), { what: "the daemon to exit on SIGTERM" });
    assert.equal(existsSync(sock), false, "socket removed");
    assert.match(drain(), /msg="shutting down".*reason=SIGTERM/);
  });
});
