// A stdout FIFO whose reader stops reading (issue 10 item 3): the container's writes must not block past the
// stall limit, dropped bytes are counted, and a returning reader gets the held (newest) bytes, then live ones.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, constants, openSync, readSync } from "node:fs";
import { suite, test } from "node:test";
import { Logger, MemorySink } from "../../src/log.js";
import { openProcessIO } from "../../src/stdio/index.js";
import { deadline, exited, fifoReader, mkfifo, tmpDir, until } from "./helpers.js";

const KiB = 1024;
const MiB = 1024 * KiB;
const none = { stdin: "", stdout: "", stderr: "", terminal: false };

/** Numbered 10-byte lines [from, to): unique, so any loss, reordering or duplicate shows. */
function lines(from: number, to: number): Buffer {
  const parts: string[] = [];
  for (let i = from; i < to; i++) parts.push(String(i).padStart(9, "0") + "\n");
  return Buffer.from(parts.join(""));
}

// The "container": writes lines [0, n1) to stdout in 64 KiB writes, reports its slowest write on stderr,
// waits for a line on stdin, writes lines [n1, n1 + n2) and exits.
const WRITER = `
const fs = require("fs");
const [n1, n2] = process.argv.slice(1).map(Number);
const block = (a, b) => { let s = ""; for (let i = a; i < b; i++) s += String(i).padStart(9, "0") + "\\n"; return Buffer.from(s); };
let maxMs = 0;
const t0 = Date.now();
for (let i = 0; i < n1; i += 6553) {
  const buf = block(i, Math.min(n1, i + 6553));
  const t = Date.now();
  for (let off = 0; off < buf.length; ) off += fs.writeSync(1, buf, off);
  maxMs = Math.max(maxMs, Date.now() - t);
}
fs.writeSync(2, JSON.stringify({ maxMs, totalMs: Date.now() - t0 }) + "\\n");
if (n2 > 0) { fs.readSync(0, Buffer.alloc(16)); fs.writeSync(1, block(n1, n1 + n2)); }
`;

function writer(stdout: number | "ignore", n1: number, n2: number): ChildProcess {
  return spawn(process.execPath, ["-e", WRITER, String(n1), String(n2)], { stdio: ["pipe", stdout, "pipe"] });
}

/** The first line the writer prints on stderr (its figures). */
async function report(child: ChildProcess): Promise<{ maxMs: number; totalMs: number }> {
  let text = "";
  for await (const c of child.stderr!) {
    text += String(c);
    if (text.includes("\n")) break;
  }
  return JSON.parse(text) as { maxMs: number; totalMs: number };
}

void suite("a stdout FIFO whose reader stops", () => {
  void test("the container never blocks past the stall limit; a returning reader gets the newest held bytes, then live ones", async (t) => {
    const stallMs = 300;
    const holdBytes = 256 * KiB;
    const n1 = Math.ceil((8 * MiB) / 10); // 8 MiB of lines, far beyond pipe + FIFO capacity
    const n2 = 10_000;
    const sink = new MemorySink();
    const log = new Logger(sink, "debug");
    const out = mkfifo(tmpDir(t), "out");
    const io = await openProcessIO({ ...none, stdout: out }, { id: "c1", ns: "default", log, outputStall: { stallMs, holdBytes } });
    t.after(() => io.close());
    const reader = fifoReader(out);
    const chunks: Buffer[] = [];
    let got = 0;
    let resumed = false;
    reader.on("data", (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= 1 * MiB && !resumed) reader.pause(); // the reader stops
    });
    const ended = new Promise<void>((resolve) => reader.once("end", resolve));
    const child = writer(io.runcStdio[1], n1, n2);
    t.after(() => child.kill());
    io.afterStart();

    const figures = await deadline(report(child), "the writer to write 8 MiB with a reader that stopped", 20_000);
    t.diagnostic(`figure: 8 MiB written in ${figures.totalMs} ms, slowest write ${figures.maxMs} ms (stall limit ${stallMs} ms)`);
    assert.ok(figures.maxMs < stallMs + 2000, `a write blocked for ${figures.maxMs} ms`);
    const stalled = sink.lines.filter((l) => l.includes("stdio reader stalled"));
    assert.equal(stalled.length, 1, sink.lines.join(""));
    assert.match(stalled[0] as string, /level=warn .* id=c1 stream=stdout stalled_ms=\d+/);

    resumed = true;
    reader.resume(); // the reader returns
    await until(() => sink.lines.some((l) => l.includes("stdio reader is back")), "the reader to be seen back");
    child.stdin!.end("go\n"); // live output after the held bytes
    assert.equal(await deadline(exited(child), "writer exit"), 0);
    assert.equal(await io.drain({ timeoutMs: 10_000 }), true);
    await deadline(ended, "stdout EOF");

    const received = Buffer.concat(chunks);
    const expected = lines(0, n1 + n2);
    let prefix = 0;
    while (prefix < received.length && received[prefix] === expected[prefix]) prefix++;
    const tail = received.length - prefix;
    assert.ok(prefix >= 1 * MiB, `the bytes read before the stop came first (${prefix})`);
    assert.ok(received.subarray(prefix).equals(expected.subarray(expected.length - tail)), "after the gap: the newest held bytes, then live output, in order");
    assert.ok(tail >= holdBytes + n2 * 10 - 10 && tail <= holdBytes + n2 * 10, `held ${tail - n2 * 10} bytes, limit ${holdBytes}`);
    const dropped = expected.length - received.length;
    const back = sink.lines.filter((l) => l.includes("stdio reader is back"));
    assert.equal(back.length, 1, sink.lines.join(""));
    assert.match(back[0] as string, new RegExp(`level=warn .* id=c1 stream=stdout dropped_bytes=${dropped} `));
    t.diagnostic(`figure: ${received.length} bytes received, ${dropped} dropped, ${tail - n2 * 10} held`);
  });

  void test("a slow reader that keeps taking data loses nothing", async (t) => {
    // The reader runs in this process: a stall of the whole process (CPU starvation in a parallel unit run,
    // GC) stops it and the guard's clock alike, and a 300 ms limit then took the reader for gone (2 of 3 full
    // unit runs on 2026-12-07, drain false after 575 ms). 1 s keeps the reader 20 periods inside the limit.
    const stallMs = 1000;
    const n1 = Math.ceil((384 * KiB) / 10);
    const sink = new MemorySink();
    const log = new Logger(sink, "debug");
    const out = mkfifo(tmpDir(t), "out");
    const io = await openProcessIO({ ...none, stdout: out }, { id: "c1", ns: "default", log, outputStall: { stallMs, holdBytes: 64 * KiB } });
    t.after(() => io.close());
    // 8 KiB every 50 ms: far slower than the writer, never idle for the stall limit.
    const fd = openSync(out, constants.O_RDONLY | constants.O_NONBLOCK);
    const chunks: Buffer[] = [];
    let eof = false;
    const timer = setInterval(() => {
      const buf = Buffer.alloc(8 * KiB);
      try {
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n === 0) eof = true;
        else chunks.push(buf.subarray(0, n));
      } catch {
        // EAGAIN: nothing yet
      }
    }, 50);
    t.after(() => {
      clearInterval(timer);
      closeSync(fd);
    });
    const child = writer(io.runcStdio[1], n1, 0);
    io.afterStart();
    assert.equal(await deadline(exited(child), "writer exit", 30_000), 0);
    assert.equal(await io.drain({ timeoutMs: 20_000 }), true);
    await until(() => eof, "stdout EOF", 20_000);
    assert.ok(Buffer.concat(chunks).equals(lines(0, n1)), "everything arrived, in order");
    assert.deepEqual(sink.lines.filter((l) => l.includes("stdio reader")), []);
  });
});
