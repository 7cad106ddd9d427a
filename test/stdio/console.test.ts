import assert from "node:assert/strict";
import { constants, existsSync, openSync } from "node:fs";
import { Socket } from "node:net";
import { dirname } from "node:path";
import { suite, test } from "node:test";
import { ConsoleSocket, copyConsole } from "../../src/stdio/index.js";
import { unreadBytes } from "../../src/sys/index.js";
import { deadline, exited, fdCount, fifoReader, fifoWriter, mkfifo, tmpDir, until } from "./helpers.js";
import { startPty } from "./pty-helpers.js";

/** Accumulates a client reader's output as text. */
function watch(s: Socket): { text: () => string; ended: Promise<void> } {
  let text = "";
  s.on("data", (c: Buffer) => (text += c.toString()));
  return { text: () => text, ended: new Promise((r) => s.once("end", () => r())) };
}

const opts = { id: "c1", ns: "default" };

void suite("ConsoleSocket and copyConsole()", () => {
  void test("receive the master and copy a real pty both ways, with resize", async (t) => {
    const dir = tmpDir(t);
    const [inp, out] = [mkfifo(dir, "in"), mkfifo(dir, "out")];
    const before = fdCount();
    const { cs, child, master } = await startPty(
      t,
      `
os.write(s, b"hello\\n")
line = readline(s)
ws = struct.unpack("HHHH", fcntl.ioctl(s, termios.TIOCGWINSZ, b"\\0" * 8))
os.write(s, b"got:" + line.strip() + b" size:%dx%d\\n" % (ws[1], ws[0]))
`,
    );
    assert.equal(existsSync(dirname(cs.path)), false, "console socket dir removed after receive");
    const reader = watch(fifoReader(out));
    const io = await copyConsole(master, { stdin: inp, stdout: out, stderr: "", terminal: true }, opts);
    await until(() => reader.text().includes("hello\r\n"), "pty output");
    io.resize(100, 40);
    const w = fifoWriter(inp);
    w.write("ping\n");
    await until(() => reader.text().includes("got:ping size:100x40\r\n"), "reply to stdin");
    assert.equal(await deadline(exited(child), "pty process exit"), 0);
    assert.equal(await io.drain({ timeoutMs: 5000 }), true);
    await deadline(reader.ended, "stdout EOF");
    w.destroy();
    io.close();
    io.close();
    await until(() => fdCount() === before, `fd count back to ${before}`);
  });

  void test("keep reading after every slave closed and one is reopened", async (t) => {
    const dir = tmpDir(t);
    const out = mkfifo(dir, "out");
    const { child, master } = await startPty(
      t,
      `
os.write(s, b"first\\n")
os.close(s)
import time
time.sleep(0.6)  # the process runs on with no slave open; the shim sees EIO meanwhile
s2 = os.open(name, os.O_RDWR | os.O_NOCTTY)
os.write(s2, b"second\\n")
os.close(s2)
`,
    );
    const reader = watch(fifoReader(out));
    const io = await copyConsole(master, { stdin: "", stdout: out, stderr: "", terminal: true }, opts);
    await deadline(exited(child), "pty process exit");
    assert.equal(await io.drain({ timeoutMs: 5000 }), true);
    await deadline(reader.ended, "stdout EOF");
    assert.equal(reader.text(), "first\r\nsecond\r\n");
    io.close();
  });

  // Here the slave closes while the reader waits idle in epoll, so the read fails with EIO (an error,
  // not EOF) and Node destroys the stream; the master must stay open and owned by the copy.
  void test("keep the master open when EIO arrives as a read error", async (t) => {
    const dir = tmpDir(t);
    const out = mkfifo(dir, "out");
    const before = fdCount();
    const { child, master } = await startPty(
      t,
      `
import time
os.write(s, b"first\\n")
time.sleep(0.3)
os.close(s)
time.sleep(0.6)
s2 = os.open(name, os.O_RDWR | os.O_NOCTTY)
os.write(s2, b"second\\n")
os.close(s2)
`,
    );
    const client = fifoReader(out);
    const reader = watch(client);
    const io = await copyConsole(master, { stdin: "", stdout: out, stderr: "", terminal: true }, opts);
    await until(() => reader.text().includes("first"), "first output");
    await deadline(exited(child), "pty process exit");
    io.resize(90, 20);
    assert.equal(await io.drain({ timeoutMs: 5000 }), true);
    await deadline(reader.ended, "stdout EOF");
    assert.equal(reader.text(), "first\r\nsecond\r\n");
    io.close();
    io.resize(90, 20);
    client.destroy();
    await until(() => fdCount() === before, `fd count back to ${before}`);
  });

  void test("shut the console down when stdin reaches EOF after closeStdin()", async (t) => {
    const dir = tmpDir(t);
    const [inp, out] = [mkfifo(dir, "in"), mkfifo(dir, "out")];
    const { child, master } = await startPty(
      t,
      `
os.write(s, b"ready\\n")
try:
    while os.read(s, 100): pass
except OSError:
    pass
`,
    );
    const reader = watch(fifoReader(out));
    const io = await copyConsole(master, { stdin: inp, stdout: out, stderr: "", terminal: true }, opts);
    const w = fifoWriter(inp);
    await until(() => reader.text().includes("ready"), "pty output");
    w.end();
    assert.equal(child.exitCode, null, "stdin keep-alive holds the console open");
    io.closeStdin();
    await deadline(exited(child), "hangup after stdin EOF");
    assert.equal(await io.drain({ timeoutMs: 5000 }), true);
    await deadline(reader.ended, "stdout EOF");
    io.close();
  });

  void test("receiveMaster() rejects when aborted", async () => {
    const cs = await ConsoleSocket.create();
    const ac = new AbortController();
    const p = cs.receiveMaster({ signal: ac.signal });
    ac.abort(new Error("stop"));
    await assert.rejects(p, /stop/);
    cs.close();
    assert.equal(existsSync(dirname(cs.path)), false);
  });
});

void suite("copyConsole() drain and the FIFO's reader", () => {
  // ctr stops reading a terminal's FIFO once it has the exit, so the exit waits for the reader (bounded).
  void test("drain resolves only after the FIFO's reader took the last output", async (t) => {
    const dir = tmpDir(t);
    const out = mkfifo(dir, "out");
    const fd = openSync(out, constants.O_RDONLY | constants.O_NONBLOCK); // not read from yet
    const size = 20_000;
    const { child, master } = await startPty(t, `os.write(s, b"x" * ${size})\nos.close(s)`);
    const io = await copyConsole(master, { stdin: "", stdout: out, stderr: "", terminal: true }, opts);
    assert.equal(await deadline(exited(child), "pty process exit"), 0);
    await until(() => unreadBytes(fd) === size, `${size} bytes in the FIFO`);
    let resolved = false;
    const drained = io.drain({ timeoutMs: 10_000 }).then((ok) => ((resolved = true), ok));
    await new Promise((r) => setImmediate(r));
    assert.equal(resolved, false, "drain resolved while the FIFO still held unread output");
    const reader = watch(new Socket({ fd, readable: true, writable: false }));
    assert.equal(await deadline(drained, "drain"), true);
    assert.equal(reader.text().length, size, "everything was read when drain resolved");
    io.close();
    reader.ended.catch(() => {});
  });
});
