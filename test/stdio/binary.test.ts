import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { suite, test } from "node:test";
import { openProcessIO } from "../../src/stdio/index.js";
import { deadline, exited, fdCount, tmpDir, until } from "./helpers.js";

const none = { stdin: "", stdout: "", stderr: "", terminal: false };

/** Writes an executable sh logger; `ready` is the shell code run against fd 5 first. */
function logger(dir: string, ready: string): string {
  const path = join(dir, "logger.sh");
  writeFileSync(
    path,
    `#!/bin/sh
out="$2"
echo "$@" > "$out/args"
echo "$CONTAINER_ID $CONTAINER_NAMESPACE" > "$out/env"
${ready}
exec 5>&-
cat <&3 > "$out/stdout.tmp" &
cat <&4 > "$out/stderr.tmp" &
wait
mv "$out/stdout.tmp" "$out/stdout"; mv "$out/stderr.tmp" "$out/stderr"
`,
  );
  chmodSync(path, 0o755);
  return path;
}

function registry() {
  const events: string[] = [];
  return { events, own: (pid: number) => events.push(`own ${pid}`), disown: (pid: number) => events.push(`disown ${pid}`) };
}

void suite("openProcessIO() with a logging binary", () => {
  for (const scheme of ["binary", "binary-v2"]) {
    void test(`${scheme}:// feeds the logger the container's stdout and stderr`, async (t) => {
      const dir = tmpDir(t);
      const uri = `${scheme}://${logger(dir, "printf x >&5")}?dir=${encodeURIComponent(dir)}`;
      const reg = registry();
      const before = fdCount();
      const io = await openProcessIO({ ...none, stdout: uri, stderr: uri }, { id: "c1", ns: "k8s.io", registry: reg });
      assert.equal(typeof io.runcStdio[1], "number");
      assert.equal(typeof io.runcStdio[2], "number");
      const child = spawn("sh", ["-c", "echo out; echo err >&2"], { stdio: io.runcStdio });
      io.afterStart();
      await deadline(exited(child), "child exit");
      await until(() => existsSync(join(dir, "stdout")) && existsSync(join(dir, "stderr")), "logger output");
      assert.equal(readFileSync(join(dir, "stdout"), "utf8"), "out\n");
      assert.equal(readFileSync(join(dir, "stderr"), "utf8"), "err\n");
      assert.equal(readFileSync(join(dir, "args"), "utf8"), `dir ${dir}\n`);
      assert.equal(readFileSync(join(dir, "env"), "utf8"), "c1 k8s.io\n");
      assert.equal(await io.drain({ timeoutMs: 1000 }), true);
      io.close();
      await until(() => reg.events.length === 2, "logger disowned after exit");
      assert.match(reg.events[0] ?? "", /^own \d+$/);
      assert.equal(reg.events[1], reg.events[0]?.replace("own", "disown"));
      await until(() => fdCount() === before, "fds released");
    });
  }

  void test("binary:// counts EOF on the ready pipe as ready", async (t) => {
    const dir = tmpDir(t);
    const reg = registry();
    const io = await openProcessIO({ ...none, stdout: `binary://${logger(dir, ":")}?dir=${dir}` }, { id: "c", ns: "n", registry: reg });
    io.close();
    // The logger must be gone before its directory is removed.
    await until(() => reg.events.length === 2, "logger exited");
  });

  void test("binary-v2:// fails when the logger closes the ready pipe without a byte", async (t) => {
    const dir = tmpDir(t);
    const before = fdCount();
    const reg = registry();
    await assert.rejects(
      openProcessIO({ ...none, stdout: `binary-v2://${logger(dir, ":")}?dir=${dir}` }, { id: "c", ns: "n", registry: reg }),
      { code: "Unknown", message: /ready/ },
    );
    await until(() => reg.events.length === 2, "failed logger reaped");
    assert.equal(fdCount(), before);
  });

  void test("fails with a clear error when the logger does not exist", async (t) => {
    const dir = tmpDir(t);
    await assert.rejects(openProcessIO({ ...none, stdout: `binary://${dir}/nope` }, { id: "c", ns: "n" }), {
      code: "Unknown",
      message: /ENOENT/,
    });
  });

  void test("close() stops a logger that ignores EOF with SIGTERM", async (t) => {
    const dir = tmpDir(t);
    const path = join(dir, "stubborn.sh");
    writeFileSync(path, `#!/bin/sh\nprintf x >&5\nexec 5>&-\necho $$ > ${dir}/pid\nexec sleep 1000\n`);
    chmodSync(path, 0o755);
    const reg = registry();
    const io = await openProcessIO({ ...none, stdout: `binary-v2://${path}` }, { id: "c", ns: "n", registry: reg });
    io.afterStart();
    await until(() => existsSync(join(dir, "pid")), "logger pid");
    io.close();
    await until(() => reg.events.length === 2, "logger exit after SIGTERM");
  });
});
