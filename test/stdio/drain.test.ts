// drain() (what Delete waits on) when a stdout FIFO's reader went away with output still pending: CRI closes
// its side at the exit, or containerd restarted and nobody reopened it. The rest can never be written, so
// drain() gives up once the FIFO took nothing for OUTPUT_STALL_MS, well before its timeout; otherwise every
// Delete waits the whole 10 s, containerd's own Delete deadline passes, and StopContainer never completes.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { suite, test } from "node:test";
import { openProcessIO } from "../../src/stdio/index.js";
import { OUTPUT_STALL_MS } from "../../src/stdio/stall.js";
import { deadline, exited, fifoReader, mkfifo, tmpDir, until } from "./helpers.js";

const none = { stdin: "", stdout: "", stderr: "", terminal: false };
const TIMEOUT_MS = 60_000;

void suite("drain when the FIFO's reader is gone", () => {
  void test("gives up once the FIFO took nothing for the stall limit, not at the timeout, and again at once", async (t) => {
    const out = mkfifo(tmpDir(t), "out");
    const io = await openProcessIO({ ...none, stdout: out }, { id: "c1", ns: "default" });
    t.after(() => io.close());
    const reader = fifoReader(out);
    let got = 0;
    reader.on("data", (d: Buffer) => {
      got += d.length;
      if (got >= 64 * 1024) reader.destroy(); // the reader leaves with output still coming
    });
    // 4 MiB: far beyond what the pipe and the FIFO hold.
    const child = spawn("head", ["-c", String(4 << 20), "/dev/zero"], { stdio: ["ignore", io.runcStdio[1], "ignore"] });
    t.after(() => child.kill("SIGKILL"));
    io.afterStart();
    await until(() => reader.destroyed, "the reader to leave");
    // With no reader the container still finishes (the copy holds the newest output and drops the rest).
    assert.equal(await deadline(exited(child), "the writer to exit", 20_000), 0);

    const t0 = Date.now();
    const first = await deadline(io.drain({ timeoutMs: TIMEOUT_MS }), `drain to give up (stall limit ${OUTPUT_STALL_MS} ms)`, 4 * OUTPUT_STALL_MS);
    t.diagnostic(`figure: first drain gave up after ${Date.now() - t0} ms`);
    assert.equal(first, false, "drain reports the output as not drained");
    // A retried Delete (containerd retries a failed one) does not wait again for a reader that is still gone.
    assert.equal(await deadline(io.drain({ timeoutMs: TIMEOUT_MS }), "the second drain", 4 * OUTPUT_STALL_MS), false);
  });

  void test("a reader that returns in time gets everything and drain reports it drained", async (t) => {
    const out = mkfifo(tmpDir(t), "out");
    const io = await openProcessIO({ ...none, stdout: out }, { id: "c1", ns: "default" });
    t.after(() => io.close());
    const size = 256 * 1024;
    const child = spawn("head", ["-c", String(size), "/dev/zero"], { stdio: ["ignore", io.runcStdio[1], "ignore"] });
    t.after(() => child.kill("SIGKILL"));
    io.afterStart();
    // Nobody reads yet: the FIFO fills; a reader opens while drain waits, within the stall limit.
    const drained = io.drain({ timeoutMs: TIMEOUT_MS });
    const reader = fifoReader(out);
    let got = 0;
    reader.on("data", (d: Buffer) => (got += d.length));
    assert.equal(await deadline(drained, "drain with a reader"), true);
    await until(() => got === size, `all ${size} bytes to arrive (got ${got})`);
    reader.destroy();
  });
});
