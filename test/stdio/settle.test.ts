// settle() (what a process's exit waits for before it is reported): ctr 1.6 and 2.1 close their FIFO ends as
// soon as Wait returns, so output the reader has not taken by then is lost. On a loaded machine a 1 MiB
// `ctr run` lost 100-400 KiB in most runs until the exit waited for the reader (test/e2e/run.test.ts).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { closeSync, constants, openSync, readSync } from "node:fs";
import { suite, test } from "node:test";
import { openProcessIO } from "../../src/stdio/index.js";
import { deadline, exited, fifoReader, mkfifo, tmpDir } from "./helpers.js";

const none = { stdin: "", stdout: "", stderr: "", terminal: false };
const TIMEOUT_MS = 20_000;

/** A slow FIFO reader, as a busy ctr is: takes at most 8 KiB per timer turn, until stop(). */
function slowReader(path: string): { stop(): number } {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const buf = Buffer.alloc(8 * 1024);
  let got = 0;
  let timer: NodeJS.Timeout | undefined;
  const turn = (): void => {
    try {
      got += readSync(fd, buf, 0, buf.length, null);
    } catch {
      // EAGAIN: nothing to read yet
    }
    timer = setTimeout(turn, 2);
  };
  turn();
  return {
    stop: () => {
      clearTimeout(timer);
      closeSync(fd); // what ctr does once it has the exit status: what is still in the FIFO is lost
      return got;
    },
  };
}

void suite("settle at a process's exit", () => {
  void test("resolves only once the FIFO's reader took everything the process wrote", async (t) => {
    const out = mkfifo(tmpDir(t), "out");
    const io = await openProcessIO({ ...none, stdout: out }, { id: "c1", ns: "default" });
    t.after(() => io.close());
    const reader = slowReader(out);
    const size = 1 << 20;
    const child = spawn("head", ["-c", String(size), "/dev/zero"], { stdio: ["ignore", io.runcStdio[1], "ignore"] });
    t.after(() => child.kill("SIGKILL"));
    io.afterStart();
    assert.equal(await deadline(exited(child), "the writer to exit", TIMEOUT_MS), 0);
    assert.equal(await deadline(io.settle({ timeoutMs: TIMEOUT_MS }), "settle"), true);
    assert.equal(reader.stop(), size, "bytes the reader had taken when the exit would be reported");
  });

  void test("does not wait for EOF when an orphan holds the pipe open, once the pipe is empty", async (t) => {
    const out = mkfifo(tmpDir(t), "out");
    const io = await openProcessIO({ ...none, stdout: out }, { id: "c1", ns: "default" });
    t.after(() => io.close());
    const reader = fifoReader(out);
    let got = 0;
    reader.on("data", (d: Buffer) => (got += d.length));
    t.after(() => reader.destroy());
    const size = 200_000;
    // The shell exits after head; the background sleep keeps the pipe's write end open (no EOF).
    const child = spawn("sh", ["-c", `sleep 60 & echo $! >&2; head -c ${size} /dev/zero`], {
      stdio: ["ignore", io.runcStdio[1], "pipe"],
    });
    let orphan = "";
    child.stderr?.on("data", (d: Buffer) => (orphan += d.toString()));
    t.after(() => {
      if (orphan.trim() !== "") process.kill(Number(orphan.trim()), "SIGKILL");
    });
    io.afterStart();
    assert.equal(await deadline(exited(child), "the shell to exit", TIMEOUT_MS), 0);
    // Without the empty-pipe rule this waits for the timeout and reports false.
    assert.equal(await deadline(io.settle({ timeoutMs: TIMEOUT_MS }), "settle", TIMEOUT_MS + 5000), true);
    assert.equal(got, size);
  });

  void test("gives up on a FIFO nobody reads (a detached client) instead of holding the exit", async (t) => {
    const out = mkfifo(tmpDir(t), "out");
    const io = await openProcessIO({ ...none, stdout: out }, { id: "c1", ns: "default" });
    t.after(() => io.close());
    // Nobody reads: the FIFO's kernel buffer keeps the 16 KiB for a reader that may come later.
    const child = spawn("head", ["-c", String(16 * 1024), "/dev/zero"], { stdio: ["ignore", io.runcStdio[1], "ignore"] });
    t.after(() => child.kill("SIGKILL"));
    io.afterStart();
    assert.equal(await deadline(exited(child), "the writer to exit", TIMEOUT_MS), 0);
    // Bounded by the reader stall (500 ms), far below the timeout.
    assert.equal(await deadline(io.settle({ timeoutMs: 60_000 }), "settle to give up", 10_000), false);
  });

  void test("resolves at once for a process without output", async (t) => {
    const io = await openProcessIO(none, { id: "c1", ns: "default" });
    t.after(() => io.close());
    io.afterStart();
    assert.equal(await deadline(io.settle({ timeoutMs: 60_000 }), "settle", 1000), true);
  });
});
