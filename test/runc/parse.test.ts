import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { classify, criuFailure, failureMessage, lastLogError, runcError } from "../../src/runc/errors.js";
import { parsePs, parseState, parseStats, parseVersion } from "../../src/runc/parse.js";
import { parsePid } from "../../src/runc/pid-file.js";

const base = { verb: "kill", stdout: "", stderr: "", logText: "" };

void suite("runc error mapping", () => {
  void test("takes the msg of the last error line and skips other levels and junk", () => {
    const log = [
      '{"level":"error","msg":"first","time":"t"}',
      '{"level":"error","msg":"second","time":"t"}',
      '{"level":"warning","msg":"later warning","time":"t"}',
      "not json",
      "",
    ].join("\n");
    assert.equal(lastLogError(log), "second");
    assert.equal(lastLogError('{"level":"info","msg":"x"}'), undefined);
  });

  void test("falls back to stderr, then stdout, then the exit status", () => {
    assert.equal(failureMessage({ ...base, stderr: " boom \n", stdout: "out" }), "boom");
    assert.equal(failureMessage({ ...base, stdout: "out\n" }), "out");
    assert.equal(failureMessage({ ...base, exitCode: 3 }), "exit status 3");
    assert.equal(failureMessage({ ...base, logText: '{"level":"error","msg":"log wins"}', stderr: "e" }), "log wins");
  });

  void test("maps an exited process on kill to NotFound", () => {
    for (const msg of ["container not running", "no such process", "process already finished", "kill: ESRCH"]) {
      assert.equal(classify("kill", msg), "NotFound", msg);
    }
  });

  void test("maps 'does not exist' to NotFound only for lookups of an existing container", () => {
    for (const verb of ["kill", "delete", "state", "ps", "pause", "resume", "update"]) {
      assert.equal(classify(verb, "container does not exist"), "NotFound", verb);
    }
    assert.equal(classify("create", "container does not exist"), "Unknown");
    assert.equal(classify("exec", "exec failed: container does not exist"), "Unknown");
    assert.equal(classify("delete", "container not running"), "Unknown");
  });

  void test("prefixes 'runc <verb> failed: ' once and keeps the output on the error", () => {
    const e = runcError({ ...base, verb: "create", exitCode: 1, stderr: "se", stdout: "so",
      logText: '{"level":"error","msg":"runc create failed: unable to start container process: x"}' });
    assert.equal(e.message, "runc create failed: unable to start container process: x");
    assert.equal(e.code, "Unknown");
    assert.deepEqual([e.exitCode, e.stdout, e.stderr, e.verb], [1, "so", "se", "create"]);
    const k = runcError({ ...base, exitCode: 1, stderr: "container not running\n" });
    assert.equal(k.message, "runc kill failed: container not running");
    assert.equal(k.code, "NotFound");
  });
});

void suite("runc output parsers", () => {
  void test("parse state JSON and reject an unknown status", () => {
    const s = parseState(JSON.stringify({ ociVersion: "1.0.2-dev", id: "c1", pid: 42, status: "running",
      bundle: "/b", rootfs: "/b/rootfs", created: "2024-01-01T00:00:00Z", owner: "" }));
    assert.deepEqual([s.id, s.pid, s.status, s.bundle], ["c1", 42, "running", "/b"]);
    assert.throws(() => parseState('{"id":"c1","pid":1,"status":"weird"}'), { code: "Internal" });
    assert.throws(() => parseState("nope"), { code: "Internal" });
  });

  void test("parse ps output, with null meaning no pids", () => {
    assert.deepEqual(parsePs("[1,22,333]\n"), [1, 22, 333]);
    assert.deepEqual(parsePs("null\n"), []);
    assert.throws(() => parsePs('["a"]'), { code: "Internal" });
  });

  void test("return the data of a stats event", () => {
    const data = parseStats('{"type":"stats","id":"c1","data":{"pids":{"current":3}}}\n');
    assert.deepEqual(data, { pids: { current: 3 } });
    assert.throws(() => parseStats('{"type":"stats"}'), { code: "Internal" });
  });

  void test("parse runc --version text", () => {
    const v = parseVersion("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\ngo: go1.19.8\n");
    assert.deepEqual(v, { runc: "1.1.5+ds1", commit: "1.1.5+ds1-1+deb12u1", spec: "1.0.2-dev" });
    assert.deepEqual(parseVersion("runc version 1.2.0"), { runc: "1.2.0" });
    assert.throws(() => parseVersion("hello"), { code: "Internal" });
  });

  void test("parse pid file content as a positive decimal pid", () => {
    assert.equal(parsePid("1234"), 1234);
    assert.equal(parsePid("1234\n"), 1234);
    for (const bad of ["", "0", "-1", "12a", "1.5", "99999999"]) {
      assert.throws(() => parsePid(bad), { code: "Internal" }, bad);
    }
  });
});

void suite("criuFailure()", () => {
  void test("finds the first error line and flags a failed kernel probe as host-unsupported", () => {
    const log = "(00.01) Found mmap_min_addr 0x10000\n(00.013) Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\n" +
      "(00.014) Error (criu/kerndat.c:1615): kerndat_vdso_fill_symtable failed when initializing kerndat.\n";
    assert.deepEqual(criuFailure(log), { firstError: "vdso: Unexpected rt vDSO area bounds", hostUnsupported: true });
  });

  void test("an ordinary dump error is not host-unsupported", () => {
    assert.deepEqual(criuFailure("(00.2) Error (criu/sk-unix.c:123): unix: Can't dump external socket\n"),
      { firstError: "unix: Can't dump external socket", hostUnsupported: false });
    assert.deepEqual(criuFailure(""), { firstError: undefined, hostUnsupported: false });
  });
});
