// A container runs to completion under real containerd through the runtime under test (E2E_RUNTIME).
import assert from "node:assert/strict";
import { test } from "node:test";
import { assertNoLeftovers, describe, perVersion, runArgs } from "../helpers/ctr.js";

perVersion("ctr run --rm", (get) => {
  void test("prints the container's output and exits with its status", async () => {
    const c = get();
    const r = await c.ctr(runArgs("hi", ["sh", "-c", "echo hi; exit 3"]));
    assert.equal(r.stdout, "hi\n", describe(c, "ctr run", r));
    assert.equal(r.code, 3, describe(c, "ctr run", r));
  });

  void test("propagates other exit codes", async () => {
    const c = get();
    const r = await c.ctr(runArgs("seven", ["sh", "-c", "exit 7"]));
    assert.equal(r.code, 7, describe(c, "ctr run exit 7", r));
  });

  void test("runs containers that exit immediately", async () => {
    const c = get();
    const ok = await c.ctr(runArgs("t", ["true"]));
    assert.equal(ok.code, 0, describe(c, "ctr run true", ok));
    const bad = await c.ctr(runArgs("f", ["false"]));
    assert.equal(bad.code, 1, describe(c, "ctr run false", bad));
  });

  void test("passes the image's environment and arguments", async () => {
    const c = get();
    const r = await c.ctr(runArgs("env", ["sh", "-c", "echo \"$PATH|$1|$(id -u)\"", "sh", "arg one"]));
    assert.equal(r.code, 0, describe(c, "ctr run env", r));
    assert.match(r.stdout, /^\/usr\/local\/sbin:.*\/bin\|arg one\|0\n$/, describe(c, "ctr run env", r));
  });

  void test("keeps stdout and stderr apart and delivers large output whole", async () => {
    const c = get();
    const r = await c.ctr(runArgs("io", ["sh", "-c", "echo to-err >&2; yes 0123456789abcde | head -c 1048576"]));
    assert.equal(r.code, 0, describe(c, "ctr run io", { ...r, stdout: r.stdout.slice(0, 200) }));
    assert.equal(r.stdout.length, 1048576, `stdout length ${r.stdout.length}`);
    assert.match(r.stderr, /to-err\n/);
    assert.doesNotMatch(r.stdout, /to-err/);
  });

  // ctr never closes the container's stdin at EOF (no CloseIO), so the reader stops by itself.
  void test("feeds ctr's stdin to the container", async () => {
    const c = get();
    const r = await c.ctr(runArgs("stdin", ["head", "-n", "1"]), { input: "piped line\nsecond\n", timeoutMs: 20_000 });
    assert.equal(r.code, 0, describe(c, "ctr run head", r));
    assert.equal(r.stdout, "piped line\n", describe(c, "ctr run head", r));
  });

  void test("leaves no shim, mount, socket, bundle or zombie behind", async () => {
    const c = get();
    const r = await c.ctr(runArgs("clean", ["sh", "-c", "echo done"]));
    assert.equal(r.code, 0, describe(c, "ctr run", r));
    await assertNoLeftovers(c, "clean");
  });
});
