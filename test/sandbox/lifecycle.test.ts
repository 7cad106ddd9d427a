// The SandboxService of the shim binary in the order containerd 2.x drives it (protocol.md §6.3), with a
// real pause process: lifecycle, Platform, Ping, Metrics, error codes, and what Shutdown releases.
// Our own checks, written after the list of containerd/shimtest's sandbox suite (protocol.md §11 item 8).
import { io } from "../../src/gen/metrics.js";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { before, suite, test } from "node:test";
import { waitFor } from "../helpers/wait.js";
import { alive } from "../helpers/shim.js";
import { createAndStart, podConfig, requireSandboxPrereqs, S, startShim, T, waitShimGone, type SandboxShim } from "./harness.js";

const NOW_S = (): number => Math.floor(Date.now() / 1000);

const status = (s: SandboxShim, verbose = false) =>
  s.sandbox("SandboxStatus", S.SandboxStatusRequest, { sandboxId: s.id, verbose }, S.SandboxStatusResponse);

void suite("SandboxService of the shim binary", () => {
  before(requireSandboxPrereqs);

  void test("runs a pause process from CreateSandbox to ShutdownSandbox, then the shim exits and removes its socket", async (t) => {
    const s = await startShim(t);
    await s.sandbox("CreateSandbox", S.CreateSandboxRequest, { sandboxId: s.id, bundlePath: s.bundle, options: podConfig(s) }, S.CreateSandboxResponse);
    const before = await status(s);
    assert.equal(before.state, "SANDBOX_NOTREADY");
    assert.equal(before.pid, 0);

    const started = await s.sandbox("StartSandbox", S.StartSandboxRequest, { sandboxId: s.id }, S.StartSandboxResponse);
    const pid = Number(started.pid);
    assert.ok(pid > 0);
    assert.ok(Math.abs(Number(started.createdAt?.seconds) - NOW_S()) < 60, "created_at is now");
    // runc start returns once runc init is released, which may be just before its exec of catatonit.
    const argv = (): string[] => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    await waitFor(() => argv()[0] !== "runc" && argv().length > 0, { what: `pid ${pid} to exec its pause binary` });
    assert.deepEqual(argv(), ["/catatonit", "-P"]);

    const ready = await status(s, true);
    assert.equal(ready.state, "SANDBOX_READY");
    assert.equal(ready.pid, pid);
    assert.equal(ready.sandboxId, s.id);
    assert.equal(ready.info?.["pid"], String(pid));
    assert.equal(ready.info?.["bundle"], s.bundle);
    assert.equal(ready.info?.["runtime"], "runc");

    let waited = false;
    const waiting = s.sandbox("WaitSandbox", S.WaitSandboxRequest, { sandboxId: s.id }, S.WaitSandboxResponse, 60_000);
    void waiting.then(() => (waited = true), () => undefined);
    await s.sandbox("PingSandbox", S.PingRequest, { sandboxId: s.id }, S.PingResponse);
    assert.equal(waited, false, "WaitSandbox is pending while the sandbox runs");

    await s.sandbox("StopSandbox", S.StopSandboxRequest, { sandboxId: s.id, timeoutSecs: 0 }, S.StopSandboxResponse);
    const exit = await waiting;
    assert.ok(Math.abs(Number(exit.exitedAt?.seconds) - NOW_S()) < 60, "exited_at is now");
    t.diagnostic(`pause exit status after StopSandbox: ${exit.exitStatus}`);
    assert.equal(alive(pid), false);

    const stopped = await status(s);
    assert.equal(stopped.state, "SANDBOX_NOTREADY");
    assert.equal(stopped.pid, pid);
    assert.equal(Number(stopped.exitedAt?.seconds), Number(exit.exitedAt?.seconds));
    const again = await s.sandbox("WaitSandbox", S.WaitSandboxRequest, { sandboxId: s.id }, S.WaitSandboxResponse);
    assert.equal(again.exitStatus, exit.exitStatus, "WaitSandbox after the exit answers at once");
    await s.sandbox("StopSandbox", S.StopSandboxRequest, { sandboxId: s.id }, S.StopSandboxResponse);

    await s.sandbox("ShutdownSandbox", S.ShutdownSandboxRequest, { sandboxId: s.id }, S.ShutdownSandboxResponse);
    await waitShimGone(s);
    assert.deepEqual(existsSync(s.runcRoot) ? readdirSync(s.runcRoot) : [], [], "no runc state left");
    assert.equal(existsSync(`${s.bundle}/rootfs`), false, "the shim's rootfs is removed");
    assert.equal(existsSync(`${s.bundle}/config.json`), false, "the shim's config.json is removed");
  });

  void test("answers Platform, Ping and SandboxMetrics, and NotFound for unknown sandbox ids", async (t) => {
    const s = await startShim(t);
    await createAndStart(s, podConfig(s));
    const p = await s.sandbox("Platform", S.PlatformRequest, { sandboxId: s.id }, S.PlatformResponse);
    const arch: Record<string, string> = { x64: "amd64", arm64: "arm64" };
    assert.deepEqual({ os: p.platform?.os, architecture: p.platform?.architecture }, { os: "linux", architecture: arch[process.arch] ?? process.arch });
    await s.sandbox("PingSandbox", S.PingRequest, { sandboxId: s.id }, S.PingResponse);
    const m = await s.sandbox("SandboxMetrics", S.SandboxMetricsRequest, { sandboxId: s.id }, S.SandboxMetricsResponse);
    assert.equal(m.metrics?.id, s.id);
    assert.ok(Number(m.metrics?.timestamp?.seconds) > 0);
    // The pause process's cgroup, as containerd's cgroups Metrics (this host: v1 or hybrid, else v2).
    const typeUrl = m.metrics?.data?.typeUrl ?? "";
    assert.match(typeUrl, /^io\.containerd\.cgroups\.v[12]\.Metrics$/);
    const decoded = typeUrl.endsWith("v1.Metrics")
      ? io.containerd.cgroups.v1.Metrics.decode(m.metrics!.data!.value!)
      : io.containerd.cgroups.v2.Metrics.decode(m.metrics!.data!.value!);
    assert.ok(Number(decoded.pids?.current) >= 1, "the pause process is counted in its cgroup");

    const none = { sandboxId: "nope" };
    await assert.rejects(s.sandbox("SandboxStatus", S.SandboxStatusRequest, none, S.SandboxStatusResponse), { code: "NotFound" });
    await assert.rejects(s.sandbox("WaitSandbox", S.WaitSandboxRequest, none, S.WaitSandboxResponse), { code: "NotFound" });
    await assert.rejects(s.sandbox("StopSandbox", S.StopSandboxRequest, none, S.StopSandboxResponse), { code: "NotFound" });
    await assert.rejects(s.sandbox("PingSandbox", S.PingRequest, none, S.PingResponse), { code: "NotFound" });
    await assert.rejects(s.sandbox("Platform", S.PlatformRequest, none, S.PlatformResponse), { code: "NotFound" });
    await assert.rejects(s.sandbox("SandboxMetrics", S.SandboxMetricsRequest, none, S.SandboxMetricsResponse), { code: "NotFound" });
    await assert.rejects(s.sandbox("ShutdownSandbox", S.ShutdownSandboxRequest, none, S.ShutdownSandboxResponse), { code: "NotFound" });
  });

  void test("refuses a second CreateSandbox with AlreadyExists and StartSandbox without Create with NotFound", async (t) => {
    const s = await startShim(t);
    await assert.rejects(s.sandbox("StartSandbox", S.StartSandboxRequest, { sandboxId: s.id }, S.StartSandboxResponse), { code: "NotFound" });
    const req = { sandboxId: s.id, bundlePath: s.bundle, options: podConfig(s) };
    await s.sandbox("CreateSandbox", S.CreateSandboxRequest, req, S.CreateSandboxResponse);
    await assert.rejects(s.sandbox("CreateSandbox", S.CreateSandboxRequest, req, S.CreateSandboxResponse), { code: "AlreadyExists" });
    await s.sandbox("StartSandbox", S.StartSandboxRequest, { sandboxId: s.id }, S.StartSandboxResponse);
    await assert.rejects(s.sandbox("StartSandbox", S.StartSandboxRequest, { sandboxId: s.id }, S.StartSandboxResponse), { code: "FailedPrecondition" });
    const other = { sandboxId: "other", bundlePath: s.bundle, options: { typeUrl: "containerd.runc.v1.Options", value: new Uint8Array([8, 1]) } };
    await assert.rejects(s.sandbox("CreateSandbox", S.CreateSandboxRequest, other, S.CreateSandboxResponse), { code: "InvalidArgument" });
  });

  void test("ends a WaitSandbox when its deadline passes, and the sandbox keeps running", async (t) => {
    const s = await startShim(t);
    const pid = await createAndStart(s, podConfig(s));
    await assert.rejects(s.sandbox("WaitSandbox", S.WaitSandboxRequest, { sandboxId: s.id }, S.WaitSandboxResponse, 200), { code: "DeadlineExceeded" });
    assert.equal((await status(s)).state, "SANDBOX_READY");
    assert.equal(alive(pid), true);
  });

  void test("reports the exit of a pause process killed behind its back (137) and NOTREADY", async (t) => {
    const s = await startShim(t);
    const pid = await createAndStart(s, podConfig(s));
    const waiting = s.sandbox("WaitSandbox", S.WaitSandboxRequest, { sandboxId: s.id }, S.WaitSandboxResponse, 30_000);
    process.kill(pid, "SIGKILL");
    assert.equal((await waiting).exitStatus, 137);
    assert.equal((await status(s)).state, "SANDBOX_NOTREADY");
    await s.sandbox("ShutdownSandbox", S.ShutdownSandboxRequest, { sandboxId: s.id }, S.ShutdownSandboxResponse);
    await waitShimGone(s);
  });

  void test("stays up after a Task Shutdown while the sandbox is held, and exits after ShutdownSandbox", async (t) => {
    const s = await startShim(t);
    await createAndStart(s, podConfig(s));
    await s.task("Shutdown", T.ShutdownRequest, { id: s.id }, S.PingResponse);
    await s.sandbox("PingSandbox", S.PingRequest, { sandboxId: s.id }, S.PingResponse);
    const c = await s.task("Connect", T.ConnectRequest, { id: s.id }, T.ConnectResponse);
    assert.equal(c.taskPid, 0, "Connect(<sandbox id>) succeeds with no task");
    assert.equal(alive(s.shimPid), true);
    await s.sandbox("StopSandbox", S.StopSandboxRequest, { sandboxId: s.id }, S.StopSandboxResponse);
    await s.sandbox("ShutdownSandbox", S.ShutdownSandboxRequest, { sandboxId: s.id }, S.ShutdownSandboxResponse);
    await waitShimGone(s);
  });
});
