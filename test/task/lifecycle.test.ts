// Pause/Resume, Pids, Update, Checkpoint, Create-from-checkpoint and runtime options through the
// TaskService, in-process with real runc (and CRIU as far as this host lets it work).
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { suite, test } from "node:test";
import { containerd as boot, runtimeoptions } from "../../src/gen/bootstrap.js";
import { containerd } from "../../src/gen/task.js";
import { E, makeBundle, useService } from "./harness.js";

interface StateRes { status: number; pid: number; exitStatus: number }
interface Waited { exitStatus: number }
interface PidsRes { processes: { pid: number; info?: { typeUrl: string; value: Uint8Array } }[] }

const PAUSED = 4;
const RUNNING = 2;
/** True when CRIU can run on this kernel (it cannot on the Firecracker VMs used here: vDSO probe fails). */
const CRIU_WORKS = spawnSync("criu", ["check"], { stdio: "ignore" }).status === 0;
const runcOptions = (o: object) => ({ typeUrl: "containerd.runc.v1.Options", value: boot.runc.v1.Options.encode(o).finish() });
const procSpec = (args: string[]) => ({
  typeUrl: "types.containerd.io/opencontainers/runtime-spec/1/Process",
  value: Buffer.from(JSON.stringify({ args, cwd: "/", env: ["PATH=/bin"], user: { uid: 0, gid: 0 } })),
});

void suite("TaskService lifecycle calls with real runc", () => {
  const ctx = useService();

  async function started(id: string, args: string[], extra: object = {}) {
    const b = makeBundle(ctx.root.dir, id, args);
    await ctx.h.call("Create", "CreateTaskRequest", "CreateTaskResponse", { id, bundle: b.bundle, stdout: b.stdout, ...extra });
    await ctx.h.call("Start", "StartRequest", "StartResponse", { id });
    return b;
  }
  async function killAndDelete(id: string) {
    await ctx.h.call("Kill", "KillRequest", null, { id, signal: 9 }).catch(() => undefined);
    await ctx.h.call("Wait", "WaitRequest", "WaitResponse", { id });
    await ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id });
  }
  const state = (id: string, execId = "") => ctx.h.call<StateRes>("State", "StateRequest", "StateResponse", { id, execId });

  void test("pause and resume publish their events, and wrong states are FailedPrecondition", async () => {
    await started("p1", ["sleep", "1000"]);
    const mark = ctx.h.events.length;
    await ctx.h.call("Pause", "PauseRequest", null, { id: "p1" });
    assert.equal((await state("p1")).status, PAUSED);
    await assert.rejects(ctx.h.call("Pause", "PauseRequest", null, { id: "p1" }), { code: "FailedPrecondition", message: /paused state/ });
    await assert.rejects(ctx.h.call("Exec", "ExecProcessRequest", null, { id: "p1", execId: "x", spec: procSpec(["true"]) }), { code: "FailedPrecondition" });
    await assert.rejects(ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id: "p1" }), { code: "FailedPrecondition" });
    await ctx.h.call("Resume", "ResumeRequest", null, { id: "p1" });
    assert.equal((await state("p1")).status, RUNNING);
    await assert.rejects(ctx.h.call("Resume", "ResumeRequest", null, { id: "p1" }), { code: "FailedPrecondition", message: /running state/ });
    await assert.rejects(ctx.h.call("Start", "StartRequest", "StartResponse", { id: "p1" }), { code: "FailedPrecondition" });
    await assert.rejects(ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id: "p1" }), { code: "FailedPrecondition" });
    assert.deepEqual(ctx.h.topics().slice(mark), ["/tasks/paused", "/tasks/resumed"]);
    assert.equal(E.TaskPaused.decode(ctx.h.events[mark]!.value).containerId, "p1");
    await killAndDelete("p1");
  });

  void test("unknown containers are NotFound and a kill of an exited task is NotFound", async () => {
    for (const m of ["Pause", "Resume", "Pids"]) {
      await assert.rejects(ctx.h.call(m, `${m}Request`, null, { id: "nope" }), { code: "NotFound" }, m);
    }
    await assert.rejects(ctx.h.call("Update", "UpdateTaskRequest", null, { id: "nope" }), { code: "NotFound" });
    await assert.rejects(ctx.h.call("Checkpoint", "CheckpointTaskRequest", null, { id: "nope", path: "/tmp/x" }), { code: "NotFound" });
    await started("p2", ["true"]);
    await ctx.h.call("Wait", "WaitRequest", "WaitResponse", { id: "p2" });
    await assert.rejects(ctx.h.call("Kill", "KillRequest", null, { id: "p2", signal: 9 }), { code: "NotFound" });
    await assert.rejects(ctx.h.call("Pause", "PauseRequest", null, { id: "p2" }), { code: "FailedPrecondition" });
    await assert.rejects(ctx.h.call("Update", "UpdateTaskRequest", null, { id: "p2" }), { code: "FailedPrecondition" });
    await ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id: "p2" });
  });

  void test("pids lists the init and an exec tagged with its exec id", async () => {
    await started("p3", ["sleep", "1000"]);
    await ctx.h.call("Exec", "ExecProcessRequest", null, { id: "p3", execId: "ex1", spec: procSpec(["sleep", "1000"]) });
    await ctx.h.call("Start", "StartRequest", "StartResponse", { id: "p3", execId: "ex1" });
    const init = (await state("p3")).pid;
    const exec = (await state("p3", "ex1")).pid;
    const r = await ctx.h.call<PidsRes>("Pids", "PidsRequest", "PidsResponse", { id: "p3" });
    assert.deepEqual(r.processes.map((p) => p.pid).sort(), [init, exec].sort());
    const tagged = r.processes.find((p) => p.pid === exec)!;
    assert.equal(tagged.info?.typeUrl, "containerd.runc.v1.ProcessDetails");
    assert.equal(containerd.runc.v1.ProcessDetails.decode(tagged.info!.value).execId, "ex1");
    assert.equal(r.processes.find((p) => p.pid === init)!.info, null);
    await killAndDelete("p3");
  });

  void test("update sets the memory limit of the container's cgroup", async () => {
    const b = await started("p4", ["sleep", "1000"]);
    const spec = JSON.parse(readFileSync(path.join(b.bundle, "config.json"), "utf8")) as { linux: { cgroupsPath: string } };
    const limitFile = path.join("/sys/fs/cgroup/memory", spec.linux.cgroupsPath, "memory.limit_in_bytes");
    const resources = { typeUrl: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources", value: Buffer.from(JSON.stringify({ memory: { limit: 64 << 20 } })) };
    await ctx.h.call("Update", "UpdateTaskRequest", null, { id: "p4", resources });
    assert.equal(readFileSync(limitFile, "utf8").trim(), String(64 << 20));
    const bad = { ...resources, value: Buffer.from(JSON.stringify({ memory: { limit: 1 } })) };
    await assert.rejects(ctx.h.call("Update", "UpdateTaskRequest", null, { id: "p4", resources: bad }), (err: Error) => /runc update failed: .+/.test(err.message));
    await killAndDelete("p4");
  });

  void test("checkpoint runs runc checkpoint and reports CRIU's verdict on this host", async () => {
    const b = await started("p5", ["sleep", "1000"]);
    const image = path.join(ctx.root.dir, "p5-image");
    const opts = { typeUrl: "containerd.runc.v1.CheckpointOptions", value: containerd.runc.v1.CheckpointOptions.encode({ fileLocks: true }).finish() };
    const call = ctx.h.call("Checkpoint", "CheckpointTaskRequest", null, { id: "p5", path: image, options: opts });
    if (CRIU_WORKS) {
      await call;
      assert.ok(existsSync(path.join(image, "inventory.img")));
      assert.equal((await state("p5")).status, RUNNING, "left running");
    } else {
      await assert.rejects(call, (err: Error & { code?: string }) => {
        assert.equal(err.code, "FailedPrecondition");
        assert.match(err.message, /criu cannot run on this host: .+/);
        assert.ok(err.message.includes(path.join(b.bundle, "criu-dump.log")), err.message);
        return true;
      });
      assert.ok(existsSync(path.join(b.bundle, "criu-dump.log")));
      assert.equal((await state("p5")).status, RUNNING, "a failed checkpoint leaves the task running");
    }
    const wrong = { typeUrl: "containerd.runc.v1.Options", value: new Uint8Array() };
    await assert.rejects(ctx.h.call("Checkpoint", "CheckpointTaskRequest", null, { id: "p5", path: image, options: wrong }), { code: "InvalidArgument" });
    await killAndDelete("p5");
  });

  void test("a create from a checkpoint defers runc restore to Start", async () => {
    // CRIU cannot dump here, so a stand-in runtime turns `restore` into `runc run --detach` (same
    // pid file, bundle and stdio) and records every call; the shim's side of the protocol is real.
    const wrapper = path.join(ctx.root.dir, "restore-standin");
    const log = path.join(ctx.root.dir, "restore-standin.log");
    writeFileSync(wrapper, `#!/bin/sh\necho "$*" >> ${log}\ncase " $* " in *" restore "*) ;; *) exec runc "$@";; esac\n` +
      `out=""; while [ $# -gt 0 ]; do case "$1" in restore) out="$out run";; --image-path|--work-path) shift;; -no-subreaper|--shell-job) ;; *) out="$out $1";; esac; shift; done\nexec runc $out\n`);
    chmodSync(wrapper, 0o755);
    const b = makeBundle(ctx.root.dir, "r1", ["sh", "-c", "echo restored; sleep 1000"]);
    const mark = ctx.h.events.length;
    const created = await ctx.h.call<{ pid: number }>("Create", "CreateTaskRequest", "CreateTaskResponse",
      { id: "r1", bundle: b.bundle, stdout: b.stdout, checkpoint: "/ckpt/r1", options: runcOptions({ binaryName: wrapper }) });
    assert.equal(created.pid, 0);
    assert.equal(E.TaskCreate.decode(ctx.h.events[mark]!.value).checkpoint, "/ckpt/r1");
    assert.equal((await state("r1")).status, 1, "CREATED");
    await assert.rejects(ctx.h.call("Exec", "ExecProcessRequest", null, { id: "r1", execId: "x", spec: procSpec(["true"]) }), { code: "FailedPrecondition" });
    const { pid } = await ctx.h.call<{ pid: number }>("Start", "StartRequest", "StartResponse", { id: "r1" });
    assert.ok(pid > 0);
    assert.equal((await state("r1")).pid, pid);
    const line = readFileSync(log, "utf8").split("\n").find((l) => / restore /.test(l)) ?? "";
    assert.match(line, /restore --image-path \/ckpt\/r1 --detach --pid-file \S+\/r1\/init.pid -no-subreaper --bundle \S+\/r1 r1$/);
    await killAndDelete("r1");
    assert.equal(b.output(), "restored\n");
    assert.deepEqual(ctx.h.topics().slice(mark), ["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"]);
  });

  void test("runtime options: systemd_cgroup without systemd and unknown types are refused clearly", async () => {
    const b = makeBundle(ctx.root.dir, "o1", ["true"]);
    await assert.rejects(ctx.h.call("Create", "CreateTaskRequest", "CreateTaskResponse", { id: "o1", bundle: b.bundle, options: runcOptions({ systemdCgroup: true }) }),
      existsSync("/run/systemd/system") ? { code: /./ } : { code: "FailedPrecondition", message: /systemd is not running/ });
    await assert.rejects(ctx.h.call("Create", "CreateTaskRequest", "CreateTaskResponse", { id: "o1", bundle: b.bundle, options: { typeUrl: "example.com/Foo", value: new Uint8Array([1]) } }),
      { code: "InvalidArgument", message: /example.com\/Foo/ });
    const missing = runtimeoptions.v1.Options.encode({ configPath: "/nonexistent/ts.toml" }).finish();
    await assert.rejects(ctx.h.call("Create", "CreateTaskRequest", "CreateTaskResponse", { id: "o1", bundle: b.bundle, options: { typeUrl: "runtimeoptions.v1.Options", value: missing } }),
      { code: "InvalidArgument", message: /\/nonexistent\/ts.toml/ });
  });

  void test("runtime options from a config_path TOML reach runc: binary_name, root, no_pivot_root, no_new_keyring, criu_path", async () => {
    const runcRoot = path.join(ctx.root.dir, "runc-root");
    const recorder = path.join(ctx.root.dir, "recording-runc");
    const log = path.join(ctx.root.dir, "recording-runc.log");
    writeFileSync(recorder, `#!/bin/sh\necho "$*" >> ${log}\nexec runc "$@"\n`);
    chmodSync(recorder, 0o755);
    const toml = path.join(ctx.root.dir, "opts.toml");
    writeFileSync(toml, `BinaryName = "${recorder}"\nRoot = "${runcRoot}"\nNoPivotRoot = true\nNoNewKeyring = true\nCriuPath = "/usr/sbin/criu"\n`);
    const opts = { typeUrl: "runtimeoptions.v1.Options", value: runtimeoptions.v1.Options.encode({ configPath: toml }).finish() };
    const b = await started("o2", ["sleep", "1000"], { options: opts });
    assert.ok(existsSync(path.join(runcRoot, ctx.h.ns, "o2", "state.json")), "runc state under <Root>/<namespace>");
    assert.deepEqual(JSON.parse(readFileSync(path.join(b.bundle, "options.json"), "utf8")), { binaryName: recorder, root: runcRoot });
    await ctx.h.call("Checkpoint", "CheckpointTaskRequest", null, { id: "o2", path: path.join(ctx.root.dir, "o2-image") }).catch(() => undefined);
    const calls = readFileSync(log, "utf8").split("\n");
    assert.ok(calls.some((l) => l.startsWith(`--root ${runcRoot}/${ctx.h.ns} `) && / create .*--no-pivot --no-new-keyring o2$/.test(l)), calls.join("\n"));
    assert.ok(calls.some((l) => / --criu \/usr\/sbin\/criu checkpoint .*--leave-running o2$/.test(l)), calls.join("\n"));
    assert.ok(calls.filter((l) => / (create|start) /.test(l)).every((l) => !l.includes("--criu")), "--criu only for checkpoint/restore");
    await killAndDelete("o2");
  });
});
