// Drives the real shim binary as a sandboxer, the way containerd 2.x does (protocol.md §6.3): `start`
// with the sandbox id in a bundle without config.json, then Sandbox and Task calls over ttrpc. Events go
// to a recording stand-in for containerd's events service, and `-address` is a stand-in for containerd's
// gRPC socket serving Introspection (the shim asks it for containerd's root, to find the CRI root where it
// writes a CRI pod's files). Everything is removed after each test.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readlinkSync, rmdirSync, rmSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import type { TestContext } from "node:test";
import { runtime } from "../../src/gen/crisandbox.js";
import { containerd as sbx } from "../../src/gen/sandbox.js";
import { containerd as tsk, google } from "../../src/gen/task.js";
import { SOCKET_DIR_ENV } from "../../src/shim/socket/address.js";
import { Client, Server, unary, type MessageType } from "../../src/ttrpc/index.js";
import { ociSpec, makeRootfs } from "../helpers/rootfs.js";
import { waitFor } from "../helpers/wait.js";
import { contentPlugin, fakeIntrospection, type FakeIntrospection } from "./fake-introspection.js";
import { alive, daemonsFor, runShim, tempDir } from "../helpers/shim.js";

export const S = sbx.runtime.sandbox.v1;
export const T = tsk.task.v2;
export const Empty = google.protobuf.Empty;
const SANDBOX = "containerd.runtime.sandbox.v1.Sandbox";
const TASK = "containerd.task.v2.Task";
let counter = 0;

/** Fails with a clear message unless root, runc, catatonit and a static busybox are there. */
export function requireSandboxPrereqs(): void {
  if (process.getuid?.() !== 0) throw new Error("The sandbox tests need root (uid 0): runc creates namespaces and cgroups");
  for (const bin of ["/usr/bin/catatonit", "/bin/busybox"]) {
    if (!existsSync(bin)) throw new Error(`The sandbox tests need ${bin} (apt-get install catatonit busybox-static)`);
  }
  try {
    execFileSync("runc", ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error("The sandbox tests need runc on PATH (apt-get install runc)");
  }
}

/** A shim started for one sandbox id, a client connected to it, and cleanup registered on `t`. */
export interface SandboxShim {
  id: string;
  ns: string;
  root: string;
  bundle: string;
  socket: string;
  shimPid: number;
  client: Client;
  events: string[];
  runcRoot: string;
  /** The stand-in containerd's gRPC socket; its answer can be changed. */
  introspection: FakeIntrospection;
  /** The CRI root the stand-in implies: `<root>/containerd/io.containerd.grpc.v1.cri`. */
  criRoot: string;
  sandbox<Req, Res>(method: string, req: MessageType<Req>, value: Req, res: MessageType<Res>, timeoutMs?: number): Promise<Res>;
  task<Req, Res>(method: string, req: MessageType<Req>, value: Req, res: MessageType<Res>, timeoutMs?: number): Promise<Res>;
}

/** A stand-in for containerd's event service on `socket`, pushing each topic it is sent onto `topics`. */
export async function eventsServer(socket: string, topics: string[]): Promise<Server> {
  const server = new Server();
  server.register("containerd.services.events.ttrpc.v1.Events", {
    Forward: unary(tsk.services.events.ttrpc.v1.ForwardRequest, Empty, (req) => {
      topics.push(req.envelope?.topic ?? "");
      return {};
    }),
  });
  const listener = net.createServer();
  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(socket, resolve);
  });
  server.serve(listener);
  return server;
}

/** Starts the shim binary for a new sandbox id (no CreateSandbox yet) and connects to it. */
export async function startShim(t: TestContext, opts: { env?: Record<string, string> } = {}): Promise<SandboxShim> {
  const root = await tempDir(t, "sbx-");
  const ns = `sbtest${process.pid}n${counter++}`;
  const id = `pod-${ns}`;
  const bundle = path.join(root, "bundles", id);
  mkdirSync(bundle, { recursive: true, mode: 0o700 });
  const events: string[] = [];
  const ttrpcSock = path.join(root, "c.sock.ttrpc");
  const server = await eventsServer(ttrpcSock, events);
  const introspection = await fakeIntrospection(path.join(root, "c.sock"), { plugins: [contentPlugin(path.join(root, "containerd"))] });
  const env = { ...process.env, [SOCKET_DIR_ENV]: path.join(root, "s"), TTRPC_ADDRESS: ttrpcSock, ...opts.env };
  const r = await runShim(["-namespace", ns, "-address", path.join(root, "c.sock"), "-publish-binary", "/bin/true", "-id", id, "start"], {
    cwd: bundle,
    env,
  });
  const text = r.stdout.toString("utf8");
  if (r.code !== 0 || !text.startsWith("unix://")) throw new Error(`shim start failed (${r.code}): ${r.stderr}${text}`);
  const socket = text.slice("unix://".length);
  const runcRoot = `/run/containerd/runc/${ns}`;
  t.after(async () => {
    for (const pid of daemonsFor(socket)) process.kill(pid, "SIGKILL");
    await waitFor(() => daemonsFor(socket).length === 0, { what: "shim daemons to exit" });
    cleanRunc(runcRoot);
    removeCgroups(ns);
    server.close();
    await introspection.close();
  });
  const client = await Client.connect(socket);
  t.after(() => client.close());
  const conn = await client.callTyped(TASK, "Connect", T.ConnectRequest, { id }, T.ConnectResponse, { timeoutMs: 5000 });
  return {
    id, ns, root, bundle, socket, shimPid: conn.shimPid, client, events, runcRoot, introspection,
    criRoot: path.join(root, "containerd", "io.containerd.grpc.v1.cri"),
    sandbox: <Req, Res>(m: string, rq: MessageType<Req>, v: Req, rs: MessageType<Res>, ms = 20_000) =>
      client.callTyped(SANDBOX, m, rq, v, rs, { timeoutMs: ms }),
    task: <Req, Res>(m: string, rq: MessageType<Req>, v: Req, rs: MessageType<Res>, ms = 20_000) =>
      client.callTyped(TASK, m, rq, v, rs, { timeoutMs: ms }),
  };
}

/** Force-deletes whatever runc still has under `root`, then the root itself. */
export function cleanRunc(root: string): void {
  if (!existsSync(root)) return;
  for (const id of readdirSync(root)) {
    try {
      execFileSync("runc", ["--root", root, "delete", "--force", id], { stdio: "ignore" });
    } catch {
      /* already gone */
    }
  }
  rmSync(root, { recursive: true, force: true });
}

/** Removes the cgroups `/<ns>/*` and `/<ns>` in every hierarchy (they must be empty by now). */
export function removeCgroups(ns: string): void {
  for (const ctl of readdirSync("/sys/fs/cgroup")) {
    const dir = path.join("/sys/fs/cgroup", ctl, ns);
    if (!existsSync(dir)) continue;
    for (const sub of readdirSync(dir, { withFileTypes: true })) if (sub.isDirectory()) rmdirQuiet(path.join(dir, sub.name));
    rmdirQuiet(dir);
  }
}

function rmdirQuiet(p: string): void {
  try {
    rmdirSync(p);
  } catch {
    /* busy or gone */
  }
}

/** CreateSandbox + StartSandbox with `config` (a runtime.v1.PodSandboxConfig, encoded by the caller). */
export async function createAndStart(s: SandboxShim, options?: { typeUrl: string; value: Uint8Array }, netnsPath = ""): Promise<number> {
  await s.sandbox("CreateSandbox", S.CreateSandboxRequest, { sandboxId: s.id, bundlePath: s.bundle, netnsPath, ...(options ? { options } : {}) }, S.CreateSandboxResponse);
  const started = await s.sandbox("StartSandbox", S.StartSandboxRequest, { sandboxId: s.id }, S.StartSandboxResponse);
  return Number(started.pid);
}

/** The namespace link of `pid` (e.g. "net:[4026531840]"). */
export function nsOf(pid: number | "self", kind: string): string {
  return readlinkSync(`/proc/${pid}/ns/${kind}`);
}

/**
 * Writes a busybox bundle for container `cid` of the pod: it joins the sandbox's ipc, uts and net
 * namespaces (and pid, with `sharePid`), as CRI's spec would, and runs `args`.
 */
export async function podContainerBundle(s: SandboxShim, cid: string, sandboxPid: number, args: string[], sharePid = false): Promise<string> {
  const dir = path.join(s.root, "bundles", cid);
  await makeRootfs(path.join(dir, "rootfs"));
  const join = ["ipc", "uts", "network", ...(sharePid ? ["pid"] : [])];
  const file: Record<string, string> = { network: "net" };
  const spec = ociSpec({
    args,
    cgroupsPath: `/${s.ns}/${cid}`,
    annotations: { "io.kubernetes.cri.sandbox-id": s.id, "io.kubernetes.cri.container-type": "container" },
    patch: (sp) => {
      const linux = sp["linux"] as { namespaces: { type: string; path?: string }[] };
      linux.namespaces = ["pid", "ipc", "uts", "mount", "network"].map((type) =>
        join.includes(type) ? { type, path: `/proc/${sandboxPid}/ns/${file[type] ?? type}` } : { type });
      delete sp["hostname"];
    },
  });
  await writeFile(path.join(dir, "config.json"), JSON.stringify(spec));
  return dir;
}

/** Waits until the shim daemon is gone and its socket removed. */
export async function waitShimGone(s: SandboxShim): Promise<void> {
  await waitFor(() => !alive(s.shimPid), { what: "the shim daemon to exit" });
  await waitFor(() => !existsSync(s.socket), { what: "the shim socket to be removed" });
}

/** A PodSandboxConfig Any as CRI sends it. */
export function podConfig(s: SandboxShim, patch: runtime.v1.PodSandboxConfig.$Properties = {}): { typeUrl: string; value: Uint8Array } {
  const value = runtime.v1.PodSandboxConfig.encode({
    metadata: { name: "p", namespace: "default", uid: s.id },
    hostname: "pod-host",
    linux: { cgroupParent: `/${s.ns}` },
    ...patch,
  }).finish();
  return { typeUrl: "type.googleapis.com/runtime.v1.PodSandboxConfig", value };
}
