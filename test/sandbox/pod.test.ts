// The pause process as the pod's namespace holder (protocol.md §6.4, §6.5): its namespaces per
// PodSandboxConfig, containers created on the same shim that join them (checked from inside), container
// lifecycles independent of the sandbox, and nothing left once the sandbox is shut down.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { before, suite, test } from "node:test";
import { runtime } from "../../src/gen/crisandbox.js";
import { mountsUnder } from "../helpers/procs.js";
import { waitFor } from "../helpers/wait.js";
import { alive } from "../helpers/shim.js";
import { createAndStart, nsOf, podConfig, podContainerBundle, requireSandboxPrereqs, S, startShim, T, waitShimGone, type SandboxShim } from "./harness.js";

const NODE = runtime.v1.NamespaceMode.NODE;
const RUNNING = 2;

/** What a pod container reports about itself: its ipc, uts, net and pid namespaces and hostname. */
const REPORT = "for n in ipc uts net pid; do readlink /proc/self/ns/$n; done > /tmp/r; hostname >> /tmp/r; mv /tmp/r /tmp/report; exec sleep 1000";

async function runContainer(s: SandboxShim, cid: string, pausePid: number, sharePid: boolean): Promise<{ pid: number; report: string[] }> {
  const bundle = await podContainerBundle(s, cid, pausePid, ["sh", "-c", REPORT], sharePid);
  await s.task("Create", T.CreateTaskRequest, { id: cid, bundle }, T.CreateTaskResponse);
  const started = await s.task("Start", T.StartRequest, { id: cid }, T.StartResponse);
  const file = path.join(bundle, "rootfs", "tmp", "report");
  const report = await waitFor(() => (existsSync(file) ? readFileSync(file, "utf8").trim().split("\n") : undefined), { what: `${cid}'s report` });
  return { pid: Number(started.pid), report };
}

async function removeContainer(s: SandboxShim, cid: string): Promise<void> {
  await s.task("Kill", T.KillRequest, { id: cid, signal: 9 }, S.PingResponse);
  await s.task("Wait", T.WaitRequest, { id: cid }, T.WaitResponse);
  await s.task("Delete", T.DeleteRequest, { id: cid }, T.DeleteResponse);
}

const status = (s: SandboxShim) => s.sandbox("SandboxStatus", S.SandboxStatusRequest, { sandboxId: s.id }, S.SandboxStatusResponse);

void suite("the pod around the pause process", () => {
  before(requireSandboxPrereqs);

  void test("gives a default pod its own network, IPC, UTS and PID namespaces, the hostname, and catatonit as pid 1", async (t) => {
    const s = await startShim(t);
    const pid = await createAndStart(s, podConfig(s));
    for (const kind of ["net", "ipc", "uts", "pid", "mnt"]) assert.notEqual(nsOf(pid, kind), nsOf("self", kind), kind);
    assert.equal(execFileSync("nsenter", ["--uts", "-t", String(pid), "hostname"]).toString().trim(), "pod-host");
    const nspid = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]?.split(/\s+/);
    assert.equal(nspid?.at(-1), "1", "catatonit is pid 1 of the pod");
    const cgroup = readFileSync(`/proc/${pid}/cgroup`, "utf8");
    assert.match(cgroup, new RegExp(`/${s.ns}/${s.id}$`, "m"), "cgroup = <cgroup_parent>/<sandbox id>");
  });

  void test("keeps a host-network pod in the host's network and UTS namespaces, with its own IPC", async (t) => {
    const s = await startShim(t);
    const options = podConfig(s, { hostname: "", linux: { cgroupParent: `/${s.ns}`, securityContext: { namespaceOptions: { network: NODE, pid: NODE } } } });
    const pid = await createAndStart(s, options);
    assert.equal(nsOf(pid, "net"), nsOf("self", "net"));
    assert.equal(nsOf(pid, "uts"), nsOf("self", "uts"));
    assert.equal(nsOf(pid, "pid"), nsOf("self", "pid"));
    assert.notEqual(nsOf(pid, "ipc"), nsOf("self", "ipc"));
  });

  void test("applies the security context: run_as_user/group with a read-only rootfs, and all capabilities when privileged", async (t) => {
    const s = await startShim(t);
    const sc = { runAsUser: { value: 65534 }, runAsGroup: { value: 65534 }, readonlyRootfs: true };
    const pid = await createAndStart(s, podConfig(s, { linux: { cgroupParent: `/${s.ns}`, securityContext: sc } }));
    const st = readFileSync(`/proc/${pid}/status`, "utf8");
    assert.match(st, /^Uid:\s+65534\s/m);
    assert.match(st, /^Gid:\s+65534\s/m);
    const root = readFileSync(`/proc/${pid}/mountinfo`, "utf8").split("\n").find((l) => l.split(" ")[4] === "/");
    assert.match(root ?? "", / ro[, ]/, "the root mount is read-only");

    const p = await startShim(t);
    const ppid = await createAndStart(p, podConfig(p, { linux: { cgroupParent: `/${p.ns}`, securityContext: { privileged: true } } }));
    const capEff = /^CapEff:\s+([0-9a-f]+)$/m.exec(readFileSync(`/proc/${ppid}/status`, "utf8"))?.[1];
    const ours = /^CapEff:\s+([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
    assert.equal(capEff, ours, "a privileged sandbox has every capability the shim has");
  });

  void test("joins the network namespace named by netns_path", async (t) => {
    const s = await startShim(t);
    const name = `${s.ns}-net`;
    execFileSync("ip", ["netns", "add", name]);
    t.after(() => execFileSync("ip", ["netns", "del", name]));
    const pid = await createAndStart(s, podConfig(s), `/var/run/netns/${name}`);
    assert.equal(nsOf(pid, "net"), `net:[${statSync(`/var/run/netns/${name}`).ino}]`);
  });

  void test("runs one container that shares the pause process's IPC, UTS, network and PID namespaces", async (t) => {
    const s = await startShim(t);
    const pause = await createAndStart(s, podConfig(s));
    const c = await runContainer(s, "app1", pause, true);
    assert.deepEqual(c.report, [nsOf(pause, "ipc"), nsOf(pause, "uts"), nsOf(pause, "net"), nsOf(pause, "pid"), "pod-host"]);
    assert.ok(c.pid > 0 && c.pid !== pause);
    await removeContainer(s, "app1");
  });

  void test("runs several containers in one pod, and deleting one leaves the sandbox READY and the others running", async (t) => {
    const s = await startShim(t);
    const pause = await createAndStart(s, podConfig(s));
    const a = await runContainer(s, "a", pause, false);
    const b = await runContainer(s, "b", pause, false);
    assert.deepEqual(a.report.slice(0, 3), b.report.slice(0, 3), "same ipc, uts, net");
    assert.deepEqual(a.report.slice(0, 3), [nsOf(pause, "ipc"), nsOf(pause, "uts"), nsOf(pause, "net")]);
    assert.notEqual(a.report[3], b.report[3], "own pid namespaces when the pod does not share one");

    await removeContainer(s, "a");
    assert.equal((await status(s)).state, "SANDBOX_READY");
    assert.equal(alive(pause), true);
    assert.equal((await s.task("State", T.StateRequest, { id: "b" }, T.StateResponse)).status, RUNNING);
    await s.task("Shutdown", T.ShutdownRequest, { id: "a" }, S.PingResponse);
    await s.sandbox("PingSandbox", S.PingRequest, { sandboxId: s.id }, S.PingResponse);
    await removeContainer(s, "b");
  });

  void test("releases everything on ShutdownSandbox after its containers are gone: no process, mount, runc state or socket", async (t) => {
    const s = await startShim(t);
    const pause = await createAndStart(s, podConfig(s));
    const c = await runContainer(s, "c1", pause, true);
    await removeContainer(s, "c1");
    await s.task("Shutdown", T.ShutdownRequest, { id: "c1" }, S.PingResponse);
    await s.sandbox("StopSandbox", S.StopSandboxRequest, { sandboxId: s.id }, S.StopSandboxResponse);
    await s.sandbox("ShutdownSandbox", S.ShutdownSandboxRequest, { sandboxId: s.id }, S.ShutdownSandboxResponse);
    await waitShimGone(s);
    assert.equal(alive(pause), false, `the pause process ${pause} is gone`);
    assert.equal(alive(c.pid), false, `the container process ${c.pid} is gone`);
    assert.deepEqual(mountsUnder(s.root), [], "no mounts left under the test's root");
    assert.deepEqual(existsSync(s.runcRoot) ? readdirSync(s.runcRoot) : [], [], "no runc state left");
    for (const ctl of ["memory", "pids"]) assert.equal(existsSync(`/sys/fs/cgroup/${ctl}/${s.ns}/${s.id}`), false, `${ctl} cgroup removed`);
  });
});
