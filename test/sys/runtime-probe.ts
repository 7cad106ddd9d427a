// Run as a script (not a test file) by runtime.test.ts, once on Node and once on Bun: exercises the native
// seam and the fd streams and prints one JSON line of what it saw, so both runtimes can be compared.
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, readFileSync, readSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ConsoleSocket, copyConsole } from "../../src/stdio/index.js";
import { natives } from "../../src/sys/ffi.js";
import { EventFd, fdReader, fdWriter, pipe2, setNonblocking, unreadBytes } from "../../src/sys/index.js";
import { closeFd, waitReadable } from "../../src/sys/libc.js";

/** CPU time (user + system) of this process in ms. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

const IDLE_MS = 1000;
const out: Record<string, unknown> = { runtime: natives().runtime };

// errno travels with a failing call.
try {
  closeFd(-1);
  out.closeBad = "no error";
} catch (err) {
  out.closeBad = (err as Error).message;
}

// An idle eventfd watch plus a pending waitReadable cost no CPU; each fires once signalled.
const efd = EventFd.create();
const counts: bigint[] = [];
let signalled: () => void = () => {};
const gotSignal = new Promise<void>((resolve) => (signalled = resolve));
efd.onSignal((n) => {
  counts.push(n);
  signalled();
});
const [r, w] = pipe2();
let readable = false;
const waiting = waitReadable(r).then(() => (readable = true));
const before = cpuMs();
await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
out.idleCpuMs = Math.round(cpuMs() - before);
out.readableBeforeWrite = readable;
writeSync(w, "x");
await within(waiting, 5000, "waitReadable");
efd.write(3n);
await within(gotSignal, 5000, "eventfd signal");
out.eventfdCounts = counts.map(String);
// Signalled while the loop is busy: a synchronous read (oom.ts stop({ flush: true })) takes it, and the
// watch never reports it again.
counts.length = 0;
efd.write(1n);
const spinUntil = Date.now() + 200;
while (Date.now() < spinUntil) {
  // the loop is blocked, as by an exit handler
}
const syncRead = efd.read();
await new Promise((resolve) => setTimeout(resolve, 300));
out.flush = { syncRead: String(syncRead), callbacks: counts.length };
efd.close();
closeSync(r);
closeSync(w);

// fdWriter -> pipe -> fdReader: 8 MiB in order, EOF ends the reader, and both fds end up closed.
{
  const [pr, pw] = pipe2();
  const reader = fdReader(pr);
  const writer = fdWriter(pw);
  const chunks: Buffer[] = [];
  reader.on("data", (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve, reject) => reader.once("end", resolve).once("error", reject));
  const total = 8 * 1024 * 1024;
  const block = Buffer.alloc(64 * 1024);
  for (let off = 0; off < total; off += block.length) {
    block.writeUInt32BE(off, 0);
    if (!writer.write(Buffer.from(block))) await new Promise((resolve) => writer.once("drain", resolve));
  }
  writer.end();
  await within(ended, 10_000, "reader end");
  const all = Buffer.concat(chunks);
  let inOrder = all.length === total;
  for (let off = 0; inOrder && off < total; off += block.length) inOrder = all.readUInt32BE(off) === off;
  out.copied = { bytes: all.length, inOrder };
  await within(new Promise((resolve) => reader.once("close", resolve)), 5000, "reader close");
  out.fdsClosedAfterEnd = [pr, pw].every((fd) => {
    try {
      readSync(fd, Buffer.alloc(1));
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === "EBADF";
    }
  });
}

// Backpressure: with nobody reading, a writer stops taking data at the pipe's capacity (64 KiB) plus its
// buffer; once a reader drains the pipe, the rest arrives.
{
  const [pr, pw] = pipe2();
  const writer = fdWriter(pw);
  let finished = false;
  writer.on("finish", () => (finished = true));
  writer.end(Buffer.alloc(1024 * 1024, 1));
  await new Promise((resolve) => setTimeout(resolve, 200));
  out.backpressure = { finishedWithoutReader: finished, inPipe: unreadBytes(pr) };
  setNonblocking(pr, true);
  let got = 0;
  const buf = Buffer.alloc(64 * 1024);
  const deadline = Date.now() + 10_000;
  while (got < 1024 * 1024 && Date.now() < deadline) {
    try {
      got += readSync(pr, buf);
    } catch {
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  await within(new Promise((resolve) => (finished ? resolve(undefined) : writer.once("finish", resolve))), 5000, "finish");
  out.backpressure = { ...(out.backpressure as object), drained: got };
  closeSync(pr);
}

// A pty: the master (received over the console socket, as from runc) is copied to a file as the slave
// writes; once every slave is closed (EIO) the console still closes cleanly and frees the master.
{
  const PTY = `
import os, pty, socket, sys
m, s = pty.openpty()
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.connect(sys.argv[1])
socket.send_fds(c, [b"/dev/ptmx"], [m]); c.close(); os.close(m)
sys.stdin.readline(); os.write(s, b"late-output\\n")
sys.stdin.readline(); os.close(s)
sys.stdin.readline()
`;
  const dir = mkdtempSync(path.join(tmpdir(), "probe-pty-"));
  const file = path.join(dir, "out");
  const cs = await ConsoleSocket.create();
  const py = spawn("python3", ["-c", PTY, cs.path], { stdio: ["pipe", "inherit", "inherit"] });
  const read = () => {
    try {
      return readFileSync(file, "utf8");
    } catch {
      return "";
    }
  };
  const until = async (cond: () => boolean, what: string) => {
    const deadline = Date.now() + 5000;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  };
  try {
    const master = await within(cs.receiveMaster(), 5000, "pty master");
    const io = await copyConsole(master, { stdin: "", stdout: `file://${file}`, stderr: "", terminal: true }, { id: "probe", ns: "probe" });
    // Nothing to read at first (EAGAIN): the copy must still deliver what comes later.
    await new Promise((resolve) => setTimeout(resolve, 100));
    py.stdin?.write("\n");
    await until(() => read().includes("late-output"), "late pty output in the file");
    py.stdin?.write("\n"); // the slave closes: EIO on the master
    await new Promise((resolve) => setTimeout(resolve, 100));
    let closeError = "none";
    try {
      io.close();
    } catch (err) {
      closeError = String(err);
    }
    let masterClosed = false;
    try {
      readSync(master, Buffer.alloc(1));
    } catch (err) {
      masterClosed = (err as NodeJS.ErrnoException).code === "EBADF";
    }
    out.pty = { output: read().replace(/\r/g, ""), closeError, masterClosed };
  } finally {
    py.stdin?.end("\n");
    cs.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

process.stdout.write(`${JSON.stringify(out)}\n`);
