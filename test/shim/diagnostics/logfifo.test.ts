// The daemon's log FIFO: lines reach the reader; when containerd closes the reader of the bundle the daemon
// was started for (its pod was removed while others run on the same daemon), lines move to another bundle's FIFO.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { Logger } from "../../../src/log.js";
import { FifoSink, openLogFifo } from "../../../src/shim/diagnostics/logfifo.js";

const root = mkdtempSync(path.join(tmpdir(), "logfifo-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** A bundle dir with a `log` FIFO and a reader held O_RDWR|O_NONBLOCK, as containerd holds it. */
function bundle(name: string): { dir: string; reader: number } {
  const dir = path.join(root, name);
  execFileSync("mkdir", ["-p", dir]);
  execFileSync("mkfifo", [path.join(dir, "log")]);
  return { dir, reader: openSync(path.join(dir, "log"), constants.O_RDWR | constants.O_NONBLOCK) };
}

function drain(fd: number): string {
  const buf = Buffer.alloc(65536);
  try {
    return buf.subarray(0, readSync(fd, buf)).toString();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EAGAIN") return "";
    throw err;
  }
}

test("openLogFifo writes to the bundle's FIFO, and gives a null logger without a reader", () => {
  const a = bundle("plain");
  const { log, sink } = openLogFifo(a.dir, "info", { id: "c1" });
  log.info("hello");
  assert.match(drain(a.reader), /msg="hello".*id=c1/);
  assert.equal(sink?.target, a.dir);
  closeSync(a.reader);
  const none = openLogFifo(a.dir, "info");
  assert.equal(none.sink, undefined, "no reader: no FIFO held");
  none.log.info("dropped quietly");
});

test("once the first bundle's reader is gone, lines go to another bundle the daemon still holds", () => {
  const a = bundle("a");
  const b = bundle("b");
  const gone = path.join(root, "removed");
  const opened = openLogFifo(a.dir, "info");
  assert.ok(opened.sink, "the FIFO has a reader");
  opened.sink.fallbacks = () => [a.dir, gone, b.dir];
  opened.log.info("first");
  assert.match(drain(a.reader), /msg="first"/);
  closeSync(a.reader); // containerd removed pod a's bundle
  opened.log.info("second");
  assert.match(drain(b.reader), /msg="second"/, "the line after the reader went reached bundle b's FIFO");
  assert.equal(opened.sink.target, b.dir);
  assert.equal(opened.sink.dropped, 0);
  closeSync(b.reader);
});

test("without a live fallback lines are dropped and counted, and it looks again at most once a second", () => {
  const a = bundle("c");
  let t = 10_000;
  let looks = 0;
  const fd = openSync(path.join(a.dir, "log"), constants.O_WRONLY | constants.O_NONBLOCK);
  const later = bundle("d");
  const sink = new FifoSink(fd, a.dir, () => { looks++; return looks === 1 ? [] : [later.dir]; }, () => t);
  const log = new Logger(sink, "info");
  closeSync(a.reader);
  log.info("x1");
  log.info("x2");
  assert.equal(sink.dropped, 2);
  assert.equal(looks, 1, "the second line did not look again within the second");
  t += 1000;
  log.info("x3");
  assert.equal(looks, 2);
  assert.match(drain(later.reader), /msg="x3"/);
  closeSync(later.reader);
});

/** The fd numbers this process holds on `file`. */
function fdsOn(file: string): number[] {
  return readdirSync("/proc/self/fd").map(Number).filter((n) => {
    try {
      return readlinkSync(`/proc/self/fd/${n}`) === file;
    } catch {
      return false;
    }
  });
}

test("once closed (the spare adopted), the logger drops its lines and never writes into a file that took its fd number", (t) => {
  const a = bundle("closed");
  const fifo = openLogFifo(a.dir, "info");
  const [number] = fdsOn(path.join(a.dir, "log")).filter((n) => n !== a.reader);
  assert.ok(number !== undefined && fifo.sink !== undefined, "the FIFO is open for writing");
  fifo.close();
  fifo.close();
  assert.deepEqual(fdsOn(path.join(a.dir, "log")), [a.reader], "our writer is closed");
  // The next open takes the lowest free number: open until some file holds the log FIFO's old number.
  const other = path.join(root, "reused");
  const held: number[] = [];
  t.after(() => held.forEach((fd) => closeSync(fd)));
  while (held.at(-1) !== number && held.length < 64) held.push(openSync(other, "w"));
  assert.equal(held.at(-1), number, "a file now holds the number the log FIFO had");
  fifo.log.info("after close");
  assert.equal(readFileSync(other, "utf8"), "", "no log line reached the file that reused the number");
  assert.equal(drain(a.reader), "", "nor the FIFO");
  assert.equal(fifo.sink.dropped, 1, "the line was dropped and counted");
  closeSync(a.reader);
});
