import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import type { Socket } from "node:net";
import { join } from "node:path";
import { suite, test } from "node:test";
import { openProcessIO, type ProcessIO } from "../../src/stdio/index.js";
import { collect, deadline, exited, fdCount, fifoReader, fifoWriter, mkfifo, tmpDir, until } from "./helpers.js";

/** Reads exactly `n` bytes from a client reader, then closes it. */
async function readN(s: Socket, n: number): Promise<Buffer> {
  let buf = Buffer.alloc(0);
  for await (const c of s) {
    buf = Buffer.concat([buf, c as Buffer]);
    if (buf.length >= n) break;
  }
  s.destroy();
  return buf;
}

const none = { stdin: "", stdout: "", stderr: "", terminal: false };
const opts = { id: "c1", ns: "default" };

/** Runs `sh -c script` with the container-side fds as stdio, then calls afterStart(). */
function run(io: ProcessIO, script: string) {
  const child = spawn("sh", ["-c", script], { stdio: io.runcStdio });
  io.afterStart();
  return child;
}

void suite("openProcessIO() with FIFOs", () => {
  void test("gives runc /dev/null for empty paths", async () => {
    const io = await openProcessIO(none, opts);
    assert.deepEqual(io.runcStdio, ["ignore", "ignore", "ignore"]);
    assert.equal(await io.drain({ timeoutMs: 100 }), true);
    io.close();
  });

  void test("hands the container a real pipe that can reopen /dev/stdout", async (t) => {
    const dir = tmpDir(t);
    const out = mkfifo(dir, "out");
    const io = await openProcessIO({ ...none, stdout: out }, opts);
    const reader = fifoReader(out);
    const got = collect(reader);
    const child = run(io, "readlink /proc/self/fd/1; echo hi > /dev/stdout");
    assert.equal(await deadline(exited(child), "child exit"), 0);
    assert.equal(await io.drain({ timeoutMs: 5000 }), true);
    const text = (await deadline(got, "stdout EOF")).toString();
    assert.match(text, /^pipe:\[\d+\]\nhi\n$/);
    io.close();
  });

  void test("keeps output in the FIFO for a reader that attaches late", async (t) => {
    const dir = tmpDir(t);
    const out = mkfifo(dir, "out");
    const err = mkfifo(dir, "err");
    const io = await openProcessIO({ ...none, stdout: out, stderr: err }, opts);
    // No client reader yet: without our keep-alive reader these writes would fail with EPIPE.
    const child = run(io, "echo to-out; echo to-err >&2");
    assert.equal(await deadline(exited(child), "child exit"), 0);
    // A reader opened after our writer sees no EOF on epoll (Linux FIFO semantics), so read a known length.
    assert.equal((await deadline(readN(fifoReader(out), 7), "stdout")).toString(), "to-out\n");
    assert.equal((await deadline(readN(fifoReader(err), 7), "stderr")).toString(), "to-err\n");
    assert.equal(await io.drain({ timeoutMs: 5000 }), true);
    io.close();
  });

  void test("shares one writer when stdout and stderr are the same FIFO", async (t) => {
    const dir = tmpDir(t);
    const out = mkfifo(dir, "both");
    const io = await openProcessIO({ ...none, stdout: out, stderr: out }, opts);
    const got = collect(fifoReader(out));
    const child = run(io, "echo a; echo b >&2; echo c");
    assert.equal(await deadline(exited(child), "child exit"), 0);
    assert.equal(await io.drain({ timeoutMs: 5000 }), true);
    const lines = (await deadline(got, "EOF")).toString().split("\n").filter(Boolean).sort();
    assert.deepEqual(lines, ["a", "b", "c"]);
    io.close();
  });

  void test("keeps stdin open across client detach until closeStdin()", async (t) => {
    const dir = tmpDir(t);
    const stdin = mkfifo(dir, "in");
    const sink = join(dir, "sink");
    const io = await openProcessIO({ ...none, stdin }, opts);
    const child = run(io, `cat > ${sink}`);
    const w1 = fifoWriter(stdin);
    w1.end("abc");
    await until(() => existsSync(sink) && readFileSync(sink, "utf8") === "abc", "first write");
    // The client detached; a second client attaches and is still heard: no EOF reached the container.
    const w2 = fifoWriter(stdin);
    w2.write("def");
    await until(() => readFileSync(sink, "utf8") === "abcdef", "second write");
    assert.equal(child.exitCode, null);
    io.closeStdin();
    w2.end();
    assert.equal(await deadline(exited(child), "EOF after closeStdin"), 0);
    io.close();
  });

  void test("copies 64 MiB in order and complete", async (t) => {
    const dir = tmpDir(t);
    const out = mkfifo(dir, "out");
    const src = join(dir, "data");
    const data = randomBytes(64 << 20);
    writeFileSync(src, data);
    const want = createHash("sha256").update(data).digest("hex");
    const io = await openProcessIO({ ...none, stdout: out }, opts);
    const hash = createHash("sha256");
    let n = 0;
    const reader = fifoReader(out);
    reader.on("data", (c: Buffer) => {
      hash.update(c);
      n += c.length;
    });
    const ended = new Promise((r) => reader.once("end", r));
    const child = run(io, `cat ${src}`);
    assert.equal(await deadline(exited(child), "cat exit", 30_000), 0);
    assert.equal(await io.drain({ timeoutMs: 30_000 }), true);
    await deadline(ended, "reader EOF", 30_000);
    assert.equal(n, data.length);
    assert.equal(hash.digest("hex"), want);
    io.close();
  });

  void test("drain() returns false when the FIFO reader never reads", async (t) => {
    const dir = tmpDir(t);
    const out = mkfifo(dir, "out");
    const io = await openProcessIO({ ...none, stdout: out }, opts);
    const child = run(io, "head -c 1048576 /dev/zero");
    const started = Date.now();
    assert.equal(await io.drain({ timeoutMs: 200 }), false);
    assert.ok(Date.now() - started < 2000);
    io.close();
    // Closing our pipe end unblocks the writer (EPIPE), so nothing hangs.
    await deadline(exited(child), "writer exit after close");
  });

  void test("closes every fd it opened", async (t) => {
    const dir = tmpDir(t);
    const [i, o, e] = [mkfifo(dir, "in"), mkfifo(dir, "out"), mkfifo(dir, "err")];
    const before = fdCount();
    const io = await openProcessIO({ stdin: i, stdout: o, stderr: e, terminal: false }, { ...opts, uid: 0, gid: 0 });
    assert.ok(fdCount() > before);
    const child = run(io, "echo x; echo y >&2");
    await deadline(exited(child), "child exit");
    io.close();
    io.close();
    await until(() => fdCount() === before, `fd count back to ${before} (now ${fdCount()})`);
  });

  void test("rejects a missing FIFO with NotFound and leaks nothing", async (t) => {
    const dir = tmpDir(t);
    const before = fdCount();
    await assert.rejects(openProcessIO({ ...none, stdout: join(dir, "missing") }, opts), { code: "NotFound" });
    assert.equal(fdCount(), before);
  });

  // Node's pipe streams refuse a regular file (ERR_INVALID_FD_TYPE): both FIFO ends leaked on every try.
  void test("rejects a path that is not a FIFO with InvalidArgument and leaks nothing", async (t) => {
    const file = join(tmpDir(t), "plain");
    writeFileSync(file, "");
    const attempt = async (spec: Partial<typeof none>): Promise<void> => {
      await assert.rejects(openProcessIO({ ...none, ...spec }, opts), (err: Error & { code?: string }) => {
        assert.equal(err.code, "InvalidArgument");
        assert.match(err.message, /FIFO ".*plain": not a FIFO/);
        return true;
      });
    };
    await attempt({ stdout: file }); // a runtime may open an fd of its own once (epoll): count from here
    const before = fdCount();
    for (let i = 0; i < 3; i++) {
      await attempt({ stdout: file });
      await attempt({ stdin: file });
      await attempt({ stdout: file, stderr: file });
    }
    assert.equal(fdCount(), before);
  });
});

void suite("openProcessIO() with file://", () => {
  void test("appends stdout and stderr to one file (dir 0755, file 0644)", async (t) => {
    const dir = tmpDir(t);
    const path = join(dir, "logs", "sub", "c.log");
    const uri = `file://${path}`;
    const io1 = await openProcessIO({ ...none, stdout: uri, stderr: uri }, opts);
    const c1 = run(io1, "echo one; echo two >&2");
    await deadline(exited(c1), "first child");
    assert.equal(await io1.drain({ timeoutMs: 5000 }), true);
    io1.close();
    assert.equal(statSync(path).mode & 0o777, 0o644 & ~process.umask());
    assert.equal(statSync(join(dir, "logs")).mode & 0o777, 0o755 & ~process.umask());
    const io2 = await openProcessIO({ ...none, stdout: uri, stderr: uri }, opts);
    const c2 = run(io2, "echo three");
    await deadline(exited(c2), "second child");
    assert.equal(await io2.drain({ timeoutMs: 5000 }), true);
    io2.close();
    const lines = readFileSync(path, "utf8").split("\n").filter(Boolean);
    assert.deepEqual(lines.slice(0, 2).sort(), ["one", "two"]);
    assert.equal(lines[2], "three");
  });
});
