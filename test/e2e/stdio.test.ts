// Stdio forms through the runtime under test: file:// and binary:// log URIs, stdin ending with CloseIO,
// a large stream through stdout checked by hash, /dev/stdout reopened by path, and output of fast exits.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import type { Containerd } from "../helpers/containerd.js";
import { VERSIONS } from "../helpers/containerd.js";
import { assertNoLeftovers, ctrOk, deleteTask, describe, perVersion, runArgs, waitStatus } from "../helpers/ctr.js";
import { REPO_ROOT } from "../helpers/image.js";
import { waitFor } from "../helpers/wait.js";

const SUITES = { "1.6": "bookworm", "1.7": "trixie", "2.1": "sid" } as const;
/** MiB through stdout: 1 GiB for the last version under test (about 10 s here), 256 MiB for the others. */
const bigMiB = (v: string) => Number(process.env.E2E_BIG_MIB ?? (v === VERSIONS[VERSIONS.length - 1] ? 1024 : 256));

// A logging binary for binary:// (argv: "dir" <dir>): copies fd 3 and 4 into files, signals readiness on
// fd 5, ignores the shim's SIGTERM so it finishes copying, and marks the end with a "done" file.
const LOGGER = `#!/bin/sh
trap '' TERM
cat <&3 > "$2/stdout" 4<&- 5>&- &
cat <&4 > "$2/stderr" 3<&- 5>&- &
printf r >&5
exec 5>&-
wait
echo "$CONTAINER_NAMESPACE/$CONTAINER_ID" > "$2/done"
`;

/** Runs ctr with its stdout streamed into an MD5 (never buffered whole); stderr is kept. */
function ctrHashed(c: Containerd, args: string[], timeoutMs: number): Promise<{ code: number | null; md5: string; bytes: number; stderr: string }> {
  const ctr = path.join(REPO_ROOT, ".deps", "containerd", SUITES[c.version], "usr", "bin", "ctr");
  const p = spawn(ctr, ["--address", c.address, "-n", c.namespace, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const hash = createHash("md5");
  let bytes = 0;
  let stderr = "";
  p.stdout.on("data", (d: Buffer) => { hash.update(d); bytes += d.length; });
  p.stderr.setEncoding("utf8").on("data", (d: string) => { stderr += d; });
  const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve, reject) => {
    p.once("error", reject);
    p.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, md5: hash.digest("hex"), bytes, stderr });
    });
  });
}

perVersion("container stdio", (get, version) => {
  let dir = "";
  before(() => { dir = mkdtempSync("/tmp/e2e-stdio-"); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  void test("file:// appends stdout and stderr to the file", async () => {
    const c = get();
    const log = path.join(dir, "logs", "file.log");
    const r = await c.ctr(["run", "--log-uri", `file://${log}`, ...runArgs("flog", ["sh", "-c", "echo out; echo err >&2; exit 2"]).slice(1)]);
    assert.equal(r.code, 2, describe(c, "ctr run --log-uri file://", r));
    assert.equal(r.stdout, "", describe(c, "ctr run --log-uri file://", r));
    const text = await waitFor(() => { const t = readFileSync(log, "utf8"); return /out\n/.test(t) && /err\n/.test(t) ? t : undefined; },
      { timeoutMs: 10_000, what: `output in ${log}` });
    assert.deepEqual(text.split("\n").sort(), ["", "err", "out"]);
  });

  void test("binary:// hands stdout and stderr to a logging binary", async () => {
    const c = get();
    const bin = path.join(dir, "logger.sh");
    writeFileSync(bin, LOGGER);
    chmodSync(bin, 0o755);
    const out = path.join(dir, "binlog");
    mkdirSync(out, { recursive: true });
    const args = runArgs("blog", ["sh", "-c", "echo out; echo err >&2; seq 1 3000 >&2; exit 2"]);
    const r = await c.ctr(["run", "--log-uri", `binary://${bin}?dir=${out}`, ...args.slice(1)]);
    assert.equal(r.code, 2, describe(c, "ctr run --log-uri binary://", r));
    await waitFor(() => existsSync(path.join(out, "done")), { timeoutMs: 10_000, what: "the logger to finish" });
    assert.equal(readFileSync(path.join(out, "done"), "utf8"), `${c.namespace}/blog\n`);
    assert.equal(readFileSync(path.join(out, "stdout"), "utf8"), "out\n");
    const want = ["err", ...Array.from({ length: 3000 }, (_, i) => String(i + 1))].join("\n") + "\n";
    assert.equal(readFileSync(path.join(out, "stderr"), "utf8"), want);
  });

  void test("feeds a large stdin to the init and ends it on EOF (CloseIO)", async () => {
    const c = get();
    const input = randomBytes(1 << 20).toString("base64");
    const r = await c.ctr(runArgs("stdin", ["sh", "-c", "cat | busybox md5sum"]), { input, timeoutMs: 30_000 });
    assert.equal(r.code, 0, describe(c, "ctr run cat", r));
    assert.equal(r.stdout.split(" ")[0], createHash("md5").update(input).digest("hex"), describe(c, "ctr run cat", r));
  });

  void test(`delivers ${bigMiB(version)} MiB through stdout complete and in order`, { timeout: 120_000 }, async () => {
    const c = get();
    const mib = bigMiB(version);
    // The container hashes what it writes (tee into a FIFO read by md5sum, reported on stderr).
    const script = `busybox mkfifo /p; busybox md5sum < /p >&2 & dd if=/dev/urandom bs=1M count=${mib} 2>/dev/null | busybox tee /p; wait`;
    const started = Date.now();
    const r = await ctrHashed(c, runArgs("big", ["sh", "-c", script]), 100_000);
    const ms = Date.now() - started;
    assert.equal(r.code, 0, `ctr run big: ${r.code} ${r.stderr}`);
    assert.equal(r.bytes, mib << 20, `bytes received after ${ms} ms`);
    assert.equal(r.md5, r.stderr.split(" ")[0], `md5 of stdout vs the container's (${ms} ms)`);
  });

  void test("lets a process reopen /dev/stdout and /dev/stderr by path", async () => {
    const c = get();
    const r = await c.ctr(runArgs("devout", ["sh", "-c", "echo hi > /dev/stdout; echo oops > /dev/stderr"]));
    assert.equal(r.code, 0, describe(c, "ctr run writing /dev/stdout", r));
    assert.equal(r.stdout, "hi\n", describe(c, "ctr run writing /dev/stdout", r));
    assert.equal(r.stderr, "oops\n", describe(c, "ctr run writing /dev/stdout", r));
  });

  void test("delivers all output of processes that exit right after writing it", async () => {
    const c = get();
    const lines = Array.from({ length: 20000 }, (_, i) => String(i + 1)).join("\n") + "\n";
    for (let i = 0; i < 3; i++) {
      const r = await c.ctr(runArgs(`fast${i}`, ["seq", "1", "20000"]));
      assert.equal(r.code, 0, describe(c, `ctr run fast${i}`, { ...r, stdout: r.stdout.slice(-100) }));
      assert.equal(r.stdout, lines, `run ${i}: ${r.stdout.length} of ${lines.length} bytes`);
    }
    await ctrOk(c, runArgs("host", ["sleep", "100000"], { detach: true }));
    await waitStatus(c, "host", "RUNNING");
    const execs = await Promise.all(Array.from({ length: 10 }, (_, i) =>
      c.ctr(["task", "exec", "--exec-id", `x${i}`, "host", "sh", "-c", "seq 1 20000; echo err >&2"])));
    execs.forEach((r, i) => {
      assert.equal(r.stdout, lines, `exec ${i}: ${r.stdout.length} of ${lines.length} bytes`);
      assert.equal(r.stderr, "err\n", describe(c, `exec x${i}`, { ...r, stdout: "" }));
    });
    await ctrOk(c, ["task", "kill", "-s", "SIGKILL", "host"]);
    await waitStatus(c, "host", "STOPPED");
    assert.equal(await deleteTask(c, "host"), 137);
    await ctrOk(c, ["container", "delete", "host"]);
    await assertNoLeftovers(c, "host");
  });
});
