import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { appendFile, readFile } from "node:fs/promises";
import { join } from "node:path";
import { suite, test } from "node:test";
import { Runc, RuncError, readPidFile } from "../../src/runc/index.js";
import { fakeRunc, RecordingRegistry, tmpDir } from "./helpers.js";

const err = (msg: string): string => JSON.stringify({ level: "error", msg, time: "2024-01-01T00:00:00Z" });

void suite("Runc with a fake runc", () => {
  void test("passes global flags first and hands create no --detach", async (t) => {
    const dir = await tmpDir(t);
    const f = await fakeRunc(dir, {}, { systemdCgroup: true });
    const pidFile = join(dir, "init.pid");
    await f.runc.create("c1", { bundle: dir, pidFile, noPivot: true, logFile: f.logFile });
    const [argv] = await f.calls();
    assert.deepEqual(argv, [
      "--root", join(dir, "root"), "--log", f.logFile, "--log-format", "json", "--systemd-cgroup",
      "create", "--bundle", dir, "--pid-file", pidFile, "--no-pivot", "c1",
    ]);
    assert.ok((await readPidFile(pidFile)) > 0);
  });

  void test("owns the runc pid right after spawn and disowns it after exit", async (t) => {
    const dir = await tmpDir(t);
    const reg = new RecordingRegistry();
    const f = await fakeRunc(dir, {}, { registry: reg });
    const pidFile = join(dir, "init.pid");
    await f.runc.create("c1", { bundle: dir, pidFile, logFile: f.logFile });
    const pid = await readPidFile(pidFile); // the wrapper execs the fake, which writes its own pid
    assert.deepEqual(reg.events, [`own ${pid}`, `disown ${pid}`]);
  });

  void test("disowns the pid when runc fails", async (t) => {
    const dir = await tmpDir(t);
    const reg = new RecordingRegistry();
    const f = await fakeRunc(dir, { FAKE_RUNC_START_EXIT: "1" }, { registry: reg });
    await assert.rejects(f.runc.start("c1", { logFile: f.logFile }), { code: "Unknown" });
    assert.equal(reg.events.length, 2);
    assert.equal(reg.owned.size, 0);
  });

  void test("maps kill 'container not running' on stderr to NotFound", async (t) => {
    const dir = await tmpDir(t);
    const f = await fakeRunc(dir, { FAKE_RUNC_KILL_EXIT: "1", FAKE_RUNC_KILL_STDERR: "container not running\n" });
    await assert.rejects(f.runc.kill("c1", 15, { logFile: f.logFile }), {
      code: "NotFound",
      message: "runc kill failed: container not running",
    });
  });

  void test("reports the last error line of the log as the message", async (t) => {
    const dir = await tmpDir(t);
    const log = [err("first"), err("container does not exist"), '{"level":"info","msg":"bye"}'].join("\n");
    const f = await fakeRunc(dir, { FAKE_RUNC_DELETE_EXIT: "1", FAKE_RUNC_DELETE_LOG: log, FAKE_RUNC_DELETE_STDERR: "x" });
    await assert.rejects(f.runc.delete("c1", { logFile: f.logFile }), {
      code: "NotFound",
      message: "runc delete failed: container does not exist",
    });
  });

  void test("ignores error lines that earlier calls left in a shared log", async (t) => {
    const dir = await tmpDir(t);
    const f = await fakeRunc(dir, { FAKE_RUNC_PAUSE_EXIT: "1", FAKE_RUNC_PAUSE_STDERR: "freezer broke" });
    await appendFile(f.logFile, err("container does not exist") + "\n");
    await assert.rejects(f.runc.pause("c1", { logFile: f.logFile }), {
      code: "Unknown",
      message: "runc pause failed: freezer broke",
    });
  });

  void test("maps a create failure to Unknown with runc's message and keeps the output", async (t) => {
    const dir = await tmpDir(t);
    const f = await fakeRunc(dir, {
      FAKE_RUNC_CREATE_EXIT: "1",
      FAKE_RUNC_CREATE_STDERR: "some stderr",
      FAKE_RUNC_CREATE_LOG: err("runc create failed: unable to start container process: exec: \"x\": not found"),
    });
    const p = f.runc.create("c1", { bundle: dir, pidFile: join(dir, "p"), logFile: f.logFile });
    const e: unknown = await p.then(() => undefined, (x: unknown) => x);
    assert.ok(e instanceof RuncError);
    assert.equal(e.code, "Unknown");
    assert.equal(e.message, 'runc create failed: unable to start container process: exec: "x": not found');
    assert.equal(e.exitCode, 1);
    // stdio was handed over ("ignore"), so nothing is captured from create
    assert.equal(e.stderr, "");
  });

  void test("says 'exit status N' when runc gives no words", async (t) => {
    const dir = await tmpDir(t);
    const f = await fakeRunc(dir, { FAKE_RUNC_START_EXIT: "3" });
    await assert.rejects(f.runc.start("c1", { logFile: f.logFile }), { message: "runc start failed: exit status 3" });
  });

  void test("does not pass NOTIFY_SOCKET to runc", async (t) => {
    const dir = await tmpDir(t);
    const f = await fakeRunc(dir, { FAKE_RUNC_STATE_STDOUT: '{"id":"c1","pid":7,"status":"running"}' });
    const saved = process.env["NOTIFY_SOCKET"];
    process.env["NOTIFY_SOCKET"] = "/run/systemd/notify";
    process.env["RUNC_TEST_MARKER"] = "kept";
    t.after(() => {
      if (saved === undefined) delete process.env["NOTIFY_SOCKET"];
      else process.env["NOTIFY_SOCKET"] = saved;
      delete process.env["RUNC_TEST_MARKER"];
    });
    const s = await f.runc.state("c1", { logFile: f.logFile });
    assert.equal(s.pid, 7);
    const env = await f.lastEnv();
    assert.equal(env.has("NOTIFY_SOCKET"), false);
    assert.equal(env.get("RUNC_TEST_MARKER"), "kept");
  });

  void test("writes the exec spec to a 0600 temp file under XDG_RUNTIME_DIR and removes it", async (t) => {
    const dir = await tmpDir(t);
    const f = await fakeRunc(dir);
    const saved = process.env["XDG_RUNTIME_DIR"];
    process.env["XDG_RUNTIME_DIR"] = dir;
    t.after(() => {
      if (saved === undefined) delete process.env["XDG_RUNTIME_DIR"];
      else process.env["XDG_RUNTIME_DIR"] = saved;
    });
    const spec = { args: ["sh"], cwd: "/", env: ["A=b"] };
    await f.runc.exec("c1", spec, { pidFile: join(dir, "e1.pid"), consoleSocket: "/s", logFile: f.logFile });
    const [argv = []] = await f.calls();
    const processFile = argv[argv.indexOf("--process") + 1] ?? "";
    assert.ok(processFile.startsWith(join(dir, "runc-process-")), processFile);
    assert.deepEqual(argv.slice(argv.indexOf("exec")), [
      "exec", "--process", processFile, "--console-socket", "/s", "--detach", "--pid-file", join(dir, "e1.pid"), "c1",
    ]);
    assert.deepEqual(JSON.parse(await readFile(f.callLog + ".process", "utf8")), spec);
    assert.equal((await readFile(f.callLog + ".mode", "utf8")).trim(), "600");
    assert.equal(existsSync(processFile), false);
  });

  void test("sends update resources as JSON on stdin", async (t) => {
    const dir = await tmpDir(t);
    const f = await fakeRunc(dir);
    const resources = { memory: { limit: 1048576 }, cpu: { shares: 512 } };
    await f.runc.update("c1", resources, { logFile: f.logFile });
    assert.deepEqual(JSON.parse(await readFile(f.callLog + ".stdin", "utf8")), resources);
  });

  void test("parses ps, stats and version output", async (t) => {
    const dir = await tmpDir(t);
    const f = await fakeRunc(dir, {
      FAKE_RUNC_PS_STDOUT: "null\n",
      FAKE_RUNC_EVENTS_STDOUT: '{"type":"stats","id":"c1","data":{"pids":{"current":2}}}\n',
      FAKE_RUNC_VERSION_STDOUT: "runc version 1.1.5+ds1\ncommit: abc\nspec: 1.0.2-dev\n",
    });
    assert.deepEqual(await f.runc.ps("c1", { logFile: f.logFile }), []);
    assert.deepEqual(await f.runc.stats("c1", { logFile: f.logFile }), { pids: { current: 2 } });
    assert.deepEqual(await f.runc.version(), { runc: "1.1.5+ds1", commit: "abc", spec: "1.0.2-dev" });
    const calls = await f.calls();
    assert.deepEqual(calls[2], ["--version"]);
  });

  void test("kills runc and throws Canceled when the signal aborts", async (t) => {
    const dir = await tmpDir(t);
    const ac = new AbortController();
    const reg = new RecordingRegistry(() => setImmediate(() => ac.abort()));
    const f = await fakeRunc(dir, { FAKE_RUNC_START_HANG: "1" }, { registry: reg });
    await assert.rejects(f.runc.start("c1", { logFile: f.logFile, signal: ac.signal }), {
      code: "Canceled",
      message: "runc start canceled",
    });
    assert.equal(reg.owned.size, 0);
  });

  void test("throws DeadlineExceeded when a timeout signal fires", async (t) => {
    const dir = await tmpDir(t);
    const f = await fakeRunc(dir, { FAKE_RUNC_KILL_HANG: "1" });
    await assert.rejects(f.runc.kill("c1", 9, { logFile: f.logFile, signal: AbortSignal.timeout(100) }), {
      code: "DeadlineExceeded",
    });
  });

  void test("does not spawn when the signal is already aborted", async (t) => {
    const dir = await tmpDir(t);
    const f = await fakeRunc(dir);
    await assert.rejects(f.runc.start("c1", { logFile: f.logFile, signal: AbortSignal.abort() }), { code: "Canceled" });
    assert.deepEqual(await f.calls(), []);
  });

  void test("reports a missing binary as Unknown", async (t) => {
    const dir = await tmpDir(t);
    const runc = new Runc({ binary: join(dir, "no-such-runc"), root: dir });
    await assert.rejects(runc.start("c1", { logFile: join(dir, "log.json") }), {
      code: "Unknown",
      message: /^Cannot run ".*no-such-runc" for runc start: ENOENT$/,
    });
  });

  void test("passes a checkpoint status fd as fd 3", async (t) => {
    const dir = await tmpDir(t);
    const f = await fakeRunc(dir);
    await f.runc.checkpoint("c1", { imagePath: "/img", statusFd: 2, leaveRunning: true, logFile: f.logFile });
    const [argv = []] = await f.calls();
    assert.deepEqual(argv.slice(argv.indexOf("checkpoint")), [
      "checkpoint", "--image-path", "/img", "--status-fd", "3", "--leave-running", "c1",
    ]);
  });
});
