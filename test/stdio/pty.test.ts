// The pty master's two directions at volume: output read in batches, complete and in order through
// copyConsole(), and stdin written into a master whose process does not read yet (pty.ts MasterWriter).
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { closeSync } from "node:fs";
import type { Readable } from "node:stream";
import { suite, test } from "node:test";
import { copyConsole } from "../../src/stdio/index.js";
import { MasterWriter } from "../../src/stdio/pty.js";
import { ptyReader } from "../../src/sys/index.js";
import { collect, deadline, exited, fdCount, fifoReader, mkfifo, tmpDir, until } from "./helpers.js";
import { startPty, textUntil } from "./pty-helpers.js";

const opts = { id: "c1", ns: "default" };

/** `count` records "%08d\n" from 0: any byte lost, repeated or moved shows in a comparison. */
function records(count: number): Buffer {
  const parts: string[] = [];
  for (let i = 0; i < count; i++) parts.push(`${String(i).padStart(8, "0")}\n`);
  return Buffer.from(parts.join(""));
}

/** Resolves with the first chunk `r` yields. */
function firstChunk(r: Readable): Promise<Buffer> {
  return new Promise((resolve) => r.once("data", (c: Buffer) => (r.pause(), resolve(c))));
}

void suite("pty master at volume", () => {
  // A pty gives at most 4095 bytes per read, and holds about 12 KiB: all of it must come as one chunk.
  void test("output the master holds is read as one chunk, not one per 4 KiB read", async (t) => {
    const { child, master } = await startPty(
      t,
      `
fcntl.fcntl(s, fcntl.F_SETFL, os.O_NONBLOCK)
n = 0
try:
    while True:
        n += os.write(s, b"x" * 1024)
except BlockingIOError:
    pass
print("written %d" % n, flush=True)
`,
      "pipe",
    );
    const line = await textUntil(child.stdout!, "\n", "slave write");
    const held = Number(/written (\d+)/.exec(line)?.[1]);
    assert.ok(held > 2 * 4096, `the pty held ${held} bytes`);
    const reader = ptyReader(master);
    t.after(() => (reader.destroy(), closeSync(master)));
    const first = await deadline(firstChunk(reader), "first chunk");
    assert.equal(first.length, held);
  });

  void test("a large output through copyConsole arrives complete and in order", async (t) => {
    const dir = tmpDir(t);
    const out = mkfifo(dir, "out");
    const count = 1_000_000; // 9 MB
    const { child, master } = await startPty(
      t,
      `
import tty
tty.setraw(s)  # no output processing: the bytes arrive as written
data = b"".join(b"%08d\\n" % i for i in range(${count}))
view = memoryview(data)
while view:
    view = view[os.write(s, view):]
os.close(s)
`,
    );
    const client = fifoReader(out);
    const got = collect(client);
    const io = await copyConsole(master, { stdin: "", stdout: out, stderr: "", terminal: true }, opts);
    assert.equal(await deadline(exited(child), "pty process exit", 30_000), 0);
    assert.equal(await io.drain({ timeoutMs: 10_000 }), true);
    const bytes = await deadline(got, "stdout EOF");
    io.close();
    const want = records(count);
    assert.equal(bytes.length, want.length, "every byte arrived");
    assert.ok(bytes.equals(want), "in order");
  });

  // The slave's input queue holds about 12 KiB: the first write fills it before the process can read.
  void test("stdin larger than the pty holds reaches a process that reads it late", async (t) => {
    const size = 1 << 20;
    const { child, master } = await startPty(
      t,
      `
import tty, signal, hashlib
tty.setraw(s)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
print("ready", flush=True)
signal.sigwait({signal.SIGUSR1})
data = bytearray()
while len(data) < ${size}:
    data += os.read(s, 65536)
os.write(s, b"got %d %s\\n" % (len(data), hashlib.sha256(data).hexdigest().encode()))
`,
      "pipe",
    );
    await textUntil(child.stdout!, "ready", "python ready");
    const reader = ptyReader(master);
    t.after(() => (reader.destroy(), closeSync(master)));
    const reply = textUntil(reader, "\n", "reply");
    const data = randomBytes(size);
    const writer = new MasterWriter(master, () => false);
    let written = false;
    writer.end(data, () => (written = true));
    assert.equal(written, false, "the first write filled the pty");
    child.kill("SIGUSR1");
    assert.equal((await reply).trim(), `got ${size} ${createHash("sha256").update(data).digest("hex")}`);
    await until(() => written, "writer finished");
    assert.equal(await deadline(exited(child), "pty process exit"), 0);
  });

  // A writer waiting for room watches a dup of the master: destroying it must let the master really close.
  void test("destroying a waiting writer lets the master close: the process sees the hang-up", async (t) => {
    const { child, master } = await startPty(
      t,
      `
import tty, signal
tty.setraw(s)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
print("ready", flush=True)
signal.sigwait({signal.SIGUSR1})
n = 0
try:
    while True:
        chunk = os.read(s, 65536)
        if not chunk: break
        n += len(chunk)
except OSError:
    pass
print("hangup after", n, flush=True)
`,
      "pipe",
    );
    await textUntil(child.stdout!, "ready", "python ready");
    const withMaster = fdCount();
    const writer = new MasterWriter(master, () => false);
    writer.write(Buffer.alloc(1 << 20, 0x61));
    writer.destroy();
    closeSync(master);
    // Before the process reads anything (a read would make room and end the wait anyway).
    await until(() => fdCount() === withMaster - 1, "the writer's dup of the master closed");
    child.kill("SIGUSR1");
    // The whole line: the text can arrive in more than one piece.
    assert.match(await textUntil(child.stdout!, "\n", "hang-up"), /hangup after \d+\n/);
    assert.equal(await deadline(exited(child), "pty process exit"), 0);
  });
});
