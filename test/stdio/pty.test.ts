// The pty master at volume: output read in batches, complete and in order through copyConsole().
import assert from "node:assert/strict";
import { closeSync } from "node:fs";
import type { Readable } from "node:stream";
import { suite, test } from "node:test";
import { copyConsole } from "../../src/stdio/index.js";
import { ptyReader } from "../../src/sys/index.js";
import { collect, deadline, exited, fifoReader, mkfifo, tmpDir } from "./helpers.js";
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
});
