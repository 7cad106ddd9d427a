// CRI shim sandboxer mode on containerd 1.7 (daemon env ENABLE_CRI_SANDBOXES=1, runtime sandbox_mode = "shim";
// protocol.md §6.1, §6.3, §11 items 3 and 10): the pod's sandbox is our shim's SandboxService with a real
// catatonit pause process, its app containers run in the same shim and join the pause process's namespaces,
// and see the /etc/resolv.conf, /etc/hosts and hostname podsandbox mode gives (the shim writes the pod files).
// Only 1.7: Debian's 2.1.9 panics in its own controller before any shim runs (§11 item 10); 1.6 has no API.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readlinkSync, statSync } from "node:fs";
import os from "node:os";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, suite, test } from "node:test";
import { RUNTIME, VERSIONS, mountsUnder, shimSocketPath, startContainerd, type Containerd } from "../helpers/containerd.js";
import {
  CRI_NS, CriClient, cri, criTaskPids, hostNetworkPod, infoPid, podFilesSeen, shimDaemons, sleeperContainer,
  type ContainerConfig, type PodFilesSeen, type PodSandboxConfig,
} from "../helpers/cri.js";
import { waitFor } from "../helpers/wait.js";

/** The CRI runtime handler that runs pods in shim sandboxer mode with our shim. */
export const SHIM_MODE_HANDLER = "shimmode";
/** Added to the harness config: a second runtime, in shim sandboxer mode (1.7 CRI config, version 2). */
export const SHIM_MODE_CONFIG = `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${SHIM_MODE_HANDLER}]
  runtime_type = "io.containerd.ts.v2"
  sandbox_mode = "shim"
`;

function ppid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}
const cmdline = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
const ns = (pid: number | "self", kind: string): string => readlinkSync(`/proc/${pid}/ns/${kind}`);
/** A host-only bridge for pod networking: no gateway, no masquerading, a 127.x subnet (protocol.md §11 item 5). */
const BRIDGE = `sbx${process.pid % 100000}`;

async function writeCniConfig(c: Containerd): Promise<void> {
  const ipam = { type: "host-local", subnet: "127.77.0.0/24", dataDir: path.join(c.dir, "cni-ipam") };
  const conf = { cniVersion: "0.4.0", name: "sbxnet", plugins: [{ type: "bridge", bridge: BRIDGE, isGateway: false, ipMasq: false, ipam }, { type: "loopback" }] };
  await writeFile(path.join(c.dir, "cni", "10-sbx.conflist"), JSON.stringify(conf));
  // CRI reloads its CNI config on the file's change event; RunPodSandbox is retried only for "not initialized".
  await waitFor(async () => /receiving change event from cni conf dir/.test(await c.logs()), { what: "CRI to see the CNI config" });
}

/** A pod's dns_config (loopback servers only, protocol.md §11 item 5). */
const DNS = { servers: ["127.0.0.53", "127.0.0.54"], searches: ["e2e.svc.cluster.local", "svc.cluster.local"], options: ["ndots:5", "edns0"] };
const DNS_TEXT = "search e2e.svc.cluster.local svc.cluster.local\nnameserver 127.0.0.53\nnameserver 127.0.0.54\noptions ndots:5 edns0\n";

/**
 * Runs pod `config` with `handler`, one sleeper container in it, reads what the container sees of the pod
 * files, then removes everything. Also returns the pod's files directory under the CRI root (exists while
 * the pod does, not after).
 */
async function seenIn(c: Containerd, client: CriClient, config: PodSandboxConfig, container: ContainerConfig, handler: string): Promise<{ seen: PodFilesSeen; dirWhileRunning: boolean; dirAfter: boolean }> {
  const id = await client.runPodSandbox(config, handler);
  const dir = path.join(c.root, "io.containerd.grpc.v1.cri", "sandboxes", id);
  const app = await client.createContainer(id, container, config);
  await client.startContainer(app);
  const seen = await podFilesSeen(client, app);
  const dirWhileRunning = existsSync(dir);
  await client.stopContainer(app, 0);
  await client.removeContainer(app);
  await client.stopPodSandbox(id);
  await client.removePodSandbox(id);
  return { seen, dirWhileRunning, dirAfter: existsSync(dir) };
}

/** Only our shim serves sandboxes (the runc shim has no SandboxService), and only 1.7 runs them here. */
function skipReason(): string | false {
  if (RUNTIME !== "io.containerd.ts.v2") return `${RUNTIME} has no SandboxService`;
  if (!VERSIONS.includes("1.7")) return "containerd 1.7 is not among E2E_VERSIONS";
  return false;
}

void suite("a CRI pod in shim sandboxer mode (containerd 1.7, io.containerd.ts.v2)", { timeout: 180_000, skip: skipReason() }, () => {
  let c: Containerd | undefined;
  let client: CriClient | undefined;
  let config: PodSandboxConfig = {};
  let podId = "";
  let pausePid = 0;
  const apps: string[] = [];
  const get = (): Containerd => c ?? assert.fail("containerd 1.7 did not start");
  const cc = (): CriClient => client ?? assert.fail("no CRI client");
  const daemon = (): number => {
    const d = shimDaemons(get());
    assert.equal(d.length, 1, `exactly one shim daemon for the pod, found ${JSON.stringify(d)}`);
    return d[0]!;
  };

  before(async () => {
    c = await startContainerd("1.7", {
      cri: true, namespace: CRI_NS, images: ["busybox", "pause"],
      env: { ENABLE_CRI_SANDBOXES: "1" }, extraConfig: SHIM_MODE_CONFIG,
    });
    client = await CriClient.connect(c.address);
  });
  after(async () => {
    client?.close();
    await c?.stop();
    try {
      execFileSync("ip", ["link", "del", BRIDGE], { stdio: "ignore" });
    } catch {
      /* never created */
    }
  });

  void test("RunPodSandbox starts the shim once and a catatonit pause process as the sandbox, READY", async () => {
    const logDir = path.join(get().dir, "pods", "sb");
    await mkdir(logDir, { recursive: true });
    config = hostNetworkPod("shim-mode-pod", logDir);
    podId = await cc().runPodSandbox(config, SHIM_MODE_HANDLER);
    const status = await cc().podSandboxStatus(podId, true);
    assert.equal(status.status?.state, cri.PodSandboxState.SANDBOX_READY);
    pausePid = infoPid(status.info);
    assert.ok(pausePid > 0, `verbose info names the pause pid: ${JSON.stringify(status.info)}`);
    await waitFor(() => cmdline(pausePid)[0] !== "runc" && cmdline(pausePid).length > 0, { what: "the pause process to exec catatonit" });
    assert.deepEqual(cmdline(pausePid), ["/catatonit", "-P"]);
    assert.equal(ppid(pausePid), daemon(), "the pause process is the shim daemon's child");
    assert.equal((await criTaskPids(get())).has(podId), false, "no pause container task: the sandbox is the shim's");
  });

  void test("runs two containers in the pod's shim, sharing the pause process's ipc and net namespaces (ExecSync)", async () => {
    for (const name of ["app1", "app2"]) {
      const id = await cc().createContainer(podId, sleeperContainer(name), config);
      await cc().startContainer(id);
      apps.push(id);
    }
    const shim = daemon();
    const pids = await criTaskPids(get());
    for (const id of apps) {
      assert.equal((await cc().containerStatus(id)).status?.state, cri.ContainerState.CONTAINER_RUNNING);
      assert.equal(ppid(pids.get(id)!), shim, `${id}'s init is a child of the pod's shim`);
      for (const kind of ["ipc", "net"]) {
        const r = await cc().execSync(id, ["readlink", `/proc/self/ns/${kind}`]);
        assert.equal(r.exitCode, 0, r.stderr);
        assert.equal(r.stdout.trim(), ns(pausePid, kind), `${kind} namespace of ${id}`);
      }
    }
    assert.notEqual(ns(pausePid, "ipc"), ns("self", "ipc"), "the pod has its own ipc namespace");
  });

  void test("keeps the pod READY across a containerd restart", async () => {
    const shim = daemon();
    await get().restart();
    cc().close();
    client = await CriClient.connect(get().address);
    const status = await cc().podSandboxStatus(podId, true);
    assert.equal(status.status?.state, cri.PodSandboxState.SANDBOX_READY);
    assert.equal(infoPid(status.info), pausePid);
    assert.equal(daemon(), shim, "the same shim daemon serves the pod");
    const r = await cc().execSync(apps[0]!, ["true"]);
    assert.equal(r.exitCode, 0, r.stderr);
  });

  void test("StopContainer, StopPodSandbox and RemovePodSandbox leave no shim, pause process, socket, mount or bundle", async () => {
    await cc().stopContainer(apps[0]!, 10);
    await cc().stopContainer(apps[1]!, 0);
    await cc().stopPodSandbox(podId);
    assert.equal((await cc().podSandboxStatus(podId)).status?.state, cri.PodSandboxState.SANDBOX_NOTREADY);
    await waitFor(() => !existsSync(`/proc/${pausePid}/cmdline`) || cmdline(pausePid)[0] !== "/catatonit", { what: "the pause process to exit" });
    for (const id of apps) await cc().removeContainer(id);
    await cc().removePodSandbox(podId);
    assert.deepEqual(await cc().listPodSandbox(), []);
    const cd = get();
    const socket = shimSocketPath(cd, CRI_NS, podId);
    const bundles = [podId, ...apps].map((id) => path.join(cd.state, "io.containerd.runtime.v2.task", CRI_NS, id));
    const left = () => ({ daemons: shimDaemons(cd), socket: existsSync(socket), mounts: mountsUnder(cd.dir), bundles: bundles.filter((b) => existsSync(b)) });
    try {
      await waitFor(() => { const l = left(); return l.daemons.length + l.mounts.length + l.bundles.length === 0 && !l.socket; },
        { timeoutMs: 15_000, what: "the pod's shim, socket, mounts and bundles to go" });
    } catch (err) {
      throw new Error(`${(err as Error).message}: ${JSON.stringify(left())}\n${cd.logTail(30)}`);
    }
  });

  void test("runs a pod-network pod: the pause process joins CRI's netns_path, containers share it and the pod's hostname", async () => {
    const cd = get();
    await writeCniConfig(cd);
    const logDir = path.join(cd.dir, "pods", "net");
    await mkdir(logDir, { recursive: true });
    const netConfig: PodSandboxConfig = { metadata: { name: "net-pod", uid: "net-pod-uid", namespace: "e2e" }, hostname: "net-pod-host", logDirectory: logDir, linux: { cgroupParent: `/${CRI_NS}` } };
    const id = await waitFor(() => cc().runPodSandbox(netConfig, SHIM_MODE_HANDLER).catch((err: Error) => {
      if (/cni|network/i.test(err.message)) return "";
      throw err;
    }), { what: "RunPodSandbox of a pod-network pod" });
    const status = await cc().podSandboxStatus(id, true);
    assert.match(status.status?.network?.ip ?? "", /^127\.77\.0\.\d+$/);
    const info = JSON.parse(status.info?.["info"] ?? "{}") as { pid: number; netns: string };
    assert.match(info.netns, /^\/var\/run\/netns\/cni-/);
    assert.equal(ns(info.pid, "net"), `net:[${statSync(info.netns).ino}]`, "the pause process is in CRI's netns");
    assert.notEqual(ns(info.pid, "net"), ns("self", "net"));
    const app = await cc().createContainer(id, { ...sleeperContainer("web"), linux: {} }, netConfig);
    await cc().startContainer(app);
    const r = await cc().execSync(app, ["sh", "-c", "readlink /proc/self/ns/net; readlink /proc/self/ns/uts; hostname"]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), [ns(info.pid, "net"), ns(info.pid, "uts"), "net-pod-host"]);
    await cc().stopContainer(app, 0);
    await cc().removeContainer(app);
    await cc().stopPodSandbox(id);
    await cc().removePodSandbox(id);
    await waitFor(() => shimDaemons(cd).length === 0, { what: "the pod's shim to exit" });
  });

  // protocol.md §11 item 16: CRI mounts <CRI root>/sandboxes/<id>/{resolv.conf,hosts,hostname} into each
  // container; in shim mode our shim writes them, and the container must see what podsandbox mode gives.
  void test("gives a host-network pod with a dns_config the resolv.conf, hosts and hostname podsandbox mode gives", async () => {
    const cd = get();
    const logDir = path.join(cd.dir, "pods", "dns-host");
    await mkdir(logDir, { recursive: true });
    const pod = (name: string): PodSandboxConfig => ({ ...hostNetworkPod(name, logDir), dnsConfig: DNS });
    const shim = await seenIn(cd, cc(), pod("dns-host-shim"), sleeperContainer("dns"), SHIM_MODE_HANDLER);
    const ref = await seenIn(cd, cc(), pod("dns-host-ref"), sleeperContainer("dns"), "runc");
    assert.deepEqual(shim.seen, ref.seen, "shim mode and podsandbox mode give the container the same files");
    assert.deepEqual(shim.seen, { resolvConf: DNS_TEXT, hosts: readFileSync("/etc/hosts", "utf8"), etcHostname: `${os.hostname()}\n`, hostname: os.hostname() });
    assert.deepEqual([shim.dirWhileRunning, shim.dirAfter], [true, false], "the pod's files directory exists while the pod does, and goes with it");
    assert.equal(ref.dirAfter, false);
    await waitFor(() => shimDaemons(cd).length === 0, { what: "the pods' shims to exit" });
  });

  void test("gives a pod-network pod with a hostname and a dns_config the files podsandbox mode gives", async () => {
    const cd = get();
    await writeCniConfig(cd);
    const logDir = path.join(cd.dir, "pods", "dns-net");
    await mkdir(logDir, { recursive: true });
    const pod = (name: string): PodSandboxConfig => ({
      metadata: { name, uid: `${name}-uid`, namespace: "e2e" }, hostname: "dns-pod-host", logDirectory: logDir,
      dnsConfig: DNS, linux: { cgroupParent: `/${CRI_NS}` },
    });
    const container = { ...sleeperContainer("dns"), linux: {} };
    const shim = await seenIn(cd, cc(), pod("dns-net-shim"), container, SHIM_MODE_HANDLER);
    const ref = await seenIn(cd, cc(), pod("dns-net-ref"), container, "runc");
    assert.deepEqual(shim.seen, ref.seen, "shim mode and podsandbox mode give the container the same files");
    assert.deepEqual(shim.seen, { resolvConf: DNS_TEXT, hosts: readFileSync("/etc/hosts", "utf8"), etcHostname: "dns-pod-host\n", hostname: "dns-pod-host" });
    assert.deepEqual([shim.dirWhileRunning, shim.dirAfter], [true, false]);
    await waitFor(() => shimDaemons(cd).length === 0, { what: "the pods' shims to exit" });
  });
});
