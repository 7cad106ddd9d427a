import assert from "node:assert/strict";
import { suite, test } from "node:test";
import * as A from "../../src/runc/args.js";

void suite("runc argument builders", () => {
  void test("global flags are --root, --log, --log-format json in order", () => {
    assert.deepEqual(A.globalArgs({ root: "/run/r/ns", logFile: "/b/log.json" }), [
      "--root", "/run/r/ns", "--log", "/b/log.json", "--log-format", "json",
    ]);
  });

  void test("global flags end with --systemd-cgroup when asked", () => {
    assert.deepEqual(A.globalArgs({ root: "/r", logFile: "/l", systemdCgroup: true }), [
      "--root", "/r", "--log", "/l", "--log-format", "json", "--systemd-cgroup",
    ]);
  });

  void test("global flags end with --criu <path> when a CRIU path is given", () => {
    assert.deepEqual(A.globalArgs({ root: "/r", logFile: "/l", criu: "/opt/criu" }).slice(-2), ["--criu", "/opt/criu"]);
    assert.ok(!A.globalArgs({ root: "/r", logFile: "/l", criu: "" }).includes("--criu"));
  });

  void test("create has no --detach and puts the id last", () => {
    assert.deepEqual(A.createArgs("c1", { bundle: "/b", pidFile: "/b/init.pid" }), [
      "create", "--bundle", "/b", "--pid-file", "/b/init.pid", "c1",
    ]);
  });

  void test("create adds console socket, no-pivot and no-new-keyring in §8.2 order", () => {
    const argv = A.createArgs("c1", {
      bundle: "/b", pidFile: "/b/init.pid", consoleSocket: "/tmp/pty1/pty.sock", noPivot: true, noNewKeyring: true,
    });
    assert.deepEqual(argv, [
      "create", "--bundle", "/b", "--pid-file", "/b/init.pid", "--console-socket", "/tmp/pty1/pty.sock",
      "--no-pivot", "--no-new-keyring", "c1",
    ]);
  });

  void test("start, state, ps, pause, resume, update and stats are exact", () => {
    assert.deepEqual(A.startArgs("c1"), ["start", "c1"]);
    assert.deepEqual(A.stateArgs("c1"), ["state", "c1"]);
    assert.deepEqual(A.psArgs("c1"), ["ps", "--format", "json", "c1"]);
    assert.deepEqual(A.pauseArgs("c1"), ["pause", "c1"]);
    assert.deepEqual(A.resumeArgs("c1"), ["resume", "c1"]);
    assert.deepEqual(A.updateArgs("c1"), ["update", "--resources=-", "c1"]);
    assert.deepEqual(A.statsArgs("c1"), ["events", "--stats", "c1"]);
  });

  void test("exec is --process, [--console-socket], --detach, --pid-file, id", () => {
    assert.deepEqual(A.execArgs("c1", { processFile: "/t/p.json", pidFile: "/b/e1.pid" }), [
      "exec", "--process", "/t/p.json", "--detach", "--pid-file", "/b/e1.pid", "c1",
    ]);
    assert.deepEqual(A.execArgs("c1", { processFile: "/t/p.json", pidFile: "/b/e1.pid", consoleSocket: "/s" }), [
      "exec", "--process", "/t/p.json", "--console-socket", "/s", "--detach", "--pid-file", "/b/e1.pid", "c1",
    ]);
  });

  void test("kill sends the signal as a decimal string after the id", () => {
    assert.deepEqual(A.killArgs("c1", 9), ["kill", "c1", "9"]);
    assert.deepEqual(A.killArgs("c1", 15, true), ["kill", "--all", "c1", "15"]);
  });

  void test("delete adds --force only when asked", () => {
    assert.deepEqual(A.deleteArgs("c1"), ["delete", "c1"]);
    assert.deepEqual(A.deleteArgs("c1", true), ["delete", "--force", "c1"]);
  });

  void test("checkpoint lists every flag in §8.2 order", () => {
    const argv = A.checkpointArgs("c1", {
      imagePath: "/img", workPath: "/work", parentPath: "/parent", tcpEstablished: true, extUnixSk: true,
      shellJob: true, pageServer: "10.0.0.1:27", fileLocks: true, manageCgroupsMode: "soft",
      emptyNs: ["network", "ipc"], lazyPages: true, statusFd3: true, leaveRunning: true,
    });
    assert.deepEqual(argv, [
      "checkpoint", "--image-path", "/img", "--work-path", "/work", "--parent-path", "/parent",
      "--tcp-established", "--ext-unix-sk", "--shell-job", "--page-server", "10.0.0.1:27", "--file-locks",
      "--manage-cgroups-mode", "soft", "--empty-ns", "network", "--empty-ns", "ipc", "--lazy-pages",
      "--status-fd", "3", "--leave-running", "c1",
    ]);
  });

  void test("checkpoint with no flags is just the id", () => {
    assert.deepEqual(A.checkpointArgs("c1", {}), ["checkpoint", "c1"]);
  });

  void test("restore detaches, disables the subreaper with one dash and names the bundle last", () => {
    assert.deepEqual(A.restoreArgs("c1", { bundle: "/b", pidFile: "/b/init.pid", imagePath: "/img", workPath: "/w" }), [
      "restore", "--image-path", "/img", "--work-path", "/w", "--detach", "--pid-file", "/b/init.pid",
      "-no-subreaper", "--bundle", "/b", "c1",
    ]);
  });

  void test("restore adds console socket and no-pivot before -no-subreaper", () => {
    const argv = A.restoreArgs("c1", {
      bundle: "/b", pidFile: "/b/init.pid", consoleSocket: "/s", noPivot: true, tcpEstablished: true,
    });
    assert.deepEqual(argv, [
      "restore", "--tcp-established", "--detach", "--pid-file", "/b/init.pid", "--console-socket", "/s",
      "--no-pivot", "-no-subreaper", "--bundle", "/b", "c1",
    ]);
  });
});
