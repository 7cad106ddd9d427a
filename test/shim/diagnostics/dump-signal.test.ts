// SIGUSR1 to the shim daemon (docs/debugging.md), without containerd: the binary is started in a bundle whose
// `log` FIFO we hold as containerd does, serves a running pod sandbox (real pause process) and a container of
// that pod, and a WaitSandbox in flight. The dump goes to the FIFO at info level; no TCP port is opened.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { before, suite, test, type TestContext } from "node:test";
import { google } from "../../../src/gen/task.js";
import { SOCKET_DIR_ENV } from "../../../src/shim/socket/address.js";
import { Client } from "../../../src/ttrpc/index.js";
import { cleanRunc, eventsServer, podConfig, podContainerBundle, removeCgroups, requireSandboxPrereqs, S, T, type SandboxShim } from "../../sandbox/harness.js";
import { makeRootfs, ociSpec } from "../../helpers/rootfs.js";
import { logFifo, tcpListeners } from "../../helpers/sockets.js";
import { waitFor } from "../../helpers/wait.js";
import { alive, daemonsFor, runShim, tempDir } from "../../helpers/shim.js";

const SANDBOX = "containerd.runtime.sandbox.v1.Sandbox";
const TASK = "containerd.task.v2.Task";

/**
 * Runs `start` for `id` in a new bundle under `root` whose `log` FIFO we hold, waits for "shim serving" (or,
 * when the daemon already runs, for the address), and registers cleanup of the daemon on `t`.
 */
async function startWithLog(t: TestContext, root: string, ns: string, id: string, extraEnv: Record<string, string> = {}, spec?: object) {
  const bundle = path.join(root, "bundles", id);
  mkdirSync(bundle, { recursive: true, mode: 0o700 });
  if (spec !== undefined) {
    await makeRootfs(path.join(bundle, "rootfs"));
    writeFileSync(path.join(bundle, "config.json"), JSON.stringify(spec));
  }
  const log = logFifo(path.join(bundle, "log"));
  t.after(() => log.close());
  const ttrpcSock = path.join(root, "c.sock.ttrpc");
  const env = { ...process.env, [SOCKET_DIR_ENV]: path.join(root, "s"), TTRPC_ADDRESS: ttrpcSock, ...extraEnv };
  const r = await runShim(["-namespace", ns, "-address", path.join(root, "c.sock"), "-publish-binary", "/bin/true", "-id", id, "start"], { cwd: bundle, env });
  assert.equal(r.code, 0, r.stderr);
  const socket = r.stdout.toString("utf8").replace(/^unix:\/\//, "");
  t.after(async () => {
    for (const pid of daemonsFor(socket)) process.kill(pid, "SIGKILL");
    await waitFor(() => daemonsFor(socket).length === 0, { what: "shim daemons to exit" });
    cleanRunc(`/run/containerd/runc/${ns}`);
    removeCgroups(ns);
  });
  return { bundle, log, socket, ttrpcSock };
}

/** The lines of the next dump after `before` lines of `log`. */
function nextDump(log: ReturnType<typeof logFifo>, before: number): Promise<string[]> {
  return waitFor(() => {
    const lines = log.lines().slice(before);
    return lines.some((l) => l.includes('msg="state dump: end"')) ? lines : undefined;
  }, { what: "the dump's last line in the log FIFO" });
}

void suite("SIGUSR1 to the shim daemon", () => {
  before(requireSandboxPrereqs);

  void test("logs every sandbox, container and in-flight call to the log FIFO at info level, and opens no TCP port", async (t) => {
    const root = await tempDir(t, "dumpsig-");
    const ns = `dumpsig${process.pid}`;
    const id = `pod-${ns}`;
    const topics: string[] = [];
    const events = await eventsServer(path.join(root, "c.sock.ttrpc"), topics);
    t.after(() => events.close());
    const { bundle, log, socket, ttrpcSock } = await startWithLog(t, root, ns, id);
    // Signal only a daemon that is up: before Node runs our code, SIGUSR1 has Node's meaning.
    await waitFor(() => log.lines().some((l) => l.includes('msg="shim serving"')), { what: "the daemon's 'shim serving' line" });
    const client = await Client.connect(socket);
    t.after(() => client.close());
    const { shimPid } = await client.callTyped(TASK, "Connect", T.ConnectRequest, { id }, T.ConnectResponse, { timeoutMs: 5000 });
    const s = { id, ns, root, bundle } as SandboxShim;
    await client.callTyped(SANDBOX, "CreateSandbox", S.CreateSandboxRequest, { sandboxId: id, bundlePath: bundle, options: podConfig(s) }, S.CreateSandboxResponse);
    const { pid: pausePid } = await client.callTyped(SANDBOX, "StartSandbox", S.StartSandboxRequest, { sandboxId: id }, S.StartSandboxResponse);
    const cb = await podContainerBundle(s, "app1", Number(pausePid), ["sleep", "100000"]);
    const { pid } = await client.callTyped(TASK, "Create", T.CreateTaskRequest, { id: "app1", bundle: cb }, T.CreateTaskResponse, { timeoutMs: 20_000 });
    await client.callTyped(TASK, "Start", T.StartRequest, { id: "app1" }, T.StartResponse, { timeoutMs: 20_000 });
    const waiting = client.callTyped(SANDBOX, "WaitSandbox", S.WaitSandboxRequest, { sandboxId: id }, S.WaitSandboxResponse, { timeoutMs: 60_000 });
    waiting.catch(() => undefined); // ends with the sandbox, or with the connection if the test fails
    // Answered after WaitSandbox on the same connection: the daemon has read that call and holds it in flight
    // (without this the dump could come first on a loaded machine: calls=0).
    await client.callTyped(TASK, "State", T.StateRequest, { id: "app1" }, T.StateResponse, { timeoutMs: 5000 });
    // The dump is to show the publisher idle: Start's event is the last one sent before it (they go in order).
    await waitFor(() => topics.includes("/tasks/start"), { what: "the /tasks/start event at containerd" });
    const before = log.lines().length;

    process.kill(shimPid, "SIGUSR1");
    const dump = await nextDump(log, before);
    const find = (msg: string, has: string) => dump.find((l) => l.includes(`msg="state dump: ${msg}"`) && l.includes(has));
    for (const l of dump.filter((x) => x.includes("state dump"))) assert.match(l, /level=info .* runtime=io\.containerd\.ts\.v2 id=pod-\S+ namespace=\S+ dump=1 /);
    assert.match(find("begin", "") ?? "", new RegExp(`pid=${shimPid} .* containers=1 execs=0 sandboxes=1 connections=1 calls=1 `));
    assert.match(find("sandbox", `sandbox=${id}`) ?? "", new RegExp(`state=running pid=${pausePid} bundle=${bundle}`));
    assert.match(find("container", "container=app1") ?? "", new RegExp(`bundle=${cb} status=running pid=${pid} sandbox=${id} oci_runtime=runc`));
    assert.match(find("call", "") ?? "", /conn=1 stream=\d+ method=containerd\.runtime\.sandbox\.v1\.Sandbox\/WaitSandbox age_ms=\d+/);
    assert.match(find("events", "") ?? "", new RegExp(`address=${ttrpcSock} pending=0 sending=false connected=true dropped=0`));
    assert.ok(alive(shimPid), "the daemon keeps running");
    assert.deepEqual(tcpListeners(shimPid), [], "no TCP port (Node's inspector) after SIGUSR1");

    await client.callTyped(TASK, "Kill", T.KillRequest, { id: "app1", signal: 9 }, google.protobuf.Empty);
    await client.callTyped(TASK, "Wait", T.WaitRequest, { id: "app1" }, T.WaitResponse, { timeoutMs: 20_000 });
    await client.callTyped(TASK, "Delete", T.DeleteRequest, { id: "app1" }, T.DeleteResponse, { timeoutMs: 20_000 });
    await client.callTyped(SANDBOX, "ShutdownSandbox", S.ShutdownSandboxRequest, { sandboxId: id }, S.ShutdownSandboxResponse);
    await waiting.catch(() => undefined);
  });

  void test("covers the containers of every pod when one daemon serves the namespace (SHIM_TS_GROUPING=namespace)", async (t) => {
    const root = await tempDir(t, "dumpns-");
    const ns = `dumpns${process.pid}`;
    const topics: string[] = [];
    const events = await eventsServer(path.join(root, "c.sock.ttrpc"), topics);
    t.after(() => events.close());
    const grouping = { SHIM_TS_GROUPING: "namespace" };
    const spec = (pod: string, cid: string) => ociSpec({ args: ["sleep", "100000"], cgroupsPath: `/${ns}/${cid}`, annotations: { "io.kubernetes.cri.sandbox-id": pod } });
    const a = await startWithLog(t, root, ns, "a1", grouping, spec("podA", "a1"));
    await waitFor(() => a.log.lines().some((l) => l.includes('msg="shim serving"')), { what: "the daemon's 'shim serving' line" });
    const b = await startWithLog(t, root, ns, "b1", grouping, spec("podB", "b1"));
    assert.equal(b.socket, a.socket, "one daemon for the namespace");
    const client = await Client.connect(a.socket);
    t.after(() => client.close());
    const pids: Record<string, number> = {};
    for (const [cid, bundle] of [["a1", a.bundle], ["b1", b.bundle]] as const) {
      pids[cid] = (await client.callTyped(TASK, "Create", T.CreateTaskRequest, { id: cid, bundle }, T.CreateTaskResponse, { timeoutMs: 20_000 })).pid;
      await client.callTyped(TASK, "Start", T.StartRequest, { id: cid }, T.StartResponse, { timeoutMs: 20_000 });
    }
    const { shimPid } = await client.callTyped(TASK, "Connect", T.ConnectRequest, { id: "b1" }, T.ConnectResponse);
    const before = a.log.lines().length;
    process.kill(shimPid, "SIGUSR1");
    // The daemon logs to the FIFO of the bundle it was started for (a1's), whichever pod a line is about.
    const dump = await nextDump(a.log, before);
    assert.match(dump.find((l) => l.includes("state dump: begin")) ?? "", / containers=2 /);
    assert.match(dump.find((l) => l.includes("container=a1 ")) ?? "", new RegExp(`status=running pid=${pids["a1"]} sandbox=podA `));
    assert.match(dump.find((l) => l.includes("container=b1 ")) ?? "", new RegExp(`status=running pid=${pids["b1"]} sandbox=podB `));
    for (const cid of ["a1", "b1"]) {
      await client.callTyped(TASK, "Kill", T.KillRequest, { id: cid, signal: 9 }, google.protobuf.Empty);
      await client.callTyped(TASK, "Wait", T.WaitRequest, { id: cid }, T.WaitResponse, { timeoutMs: 20_000 });
      await client.callTyped(TASK, "Delete", T.DeleteRequest, { id: cid }, T.DeleteResponse, { timeoutMs: 20_000 });
    }
  });
});
