import { test, before } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, readFileSync, readlinkSync, readSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCode } from "../../src/errdefs.js";
import { getWinsize, pipe2, recvFd, recvFdAsync, setNonblocking, setWinsize } from "../../src/sys/index.js";
import { exitOf, readAll, requireRoot, within } from "./util.js";

before(requireRoot);

function fdFlags(fd: number): number {
  const m = /flags:\s+([0-7]+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"));
  return Number.parseInt(m?.[1] ?? "0", 8);
}

test("pipe2 gives a real close-on-exec pipe a child can reopen as /dev/stdout", async () => {
  const [r, w] = pipe2();
  try {
    assert.match(readlinkSync(`/proc/self/fd/${r}`), /^pipe:/);
    assert.ok((fdFlags(r) & 0o2000000) !== 0 && (fdFlags(w) & 0o2000000) !== 0, "O_CLOEXEC set");
    const child = spawn("sh", ["-c", "echo hi > /dev/stdout"], { stdio: ["ignore", w, "pipe"] });
    closeSync(w);
    const stderr = child.stderr ? readAll(child.stderr) : Promise.resolve("");
    assert.deepEqual(await exitOf(child), [0, null], await stderr);
    const buf = Buffer.alloc(16);
    assert.equal(buf.toString("utf8", 0, readSync(r, buf)), "hi\n");
  } finally {
    closeSync(r);
  }
});

test("setNonblocking toggles O_NONBLOCK", () => {
  const [r, w] = pipe2();
  try {
    assert.equal(fdFlags(r) & 0o4000, 0);
    setNonblocking(r, true);
    assert.equal(fdFlags(r) & 0o4000, 0o4000);
    assert.throws(() => readSync(r, Buffer.alloc(1)), /EAGAIN/);
    setNonblocking(r, false);
    assert.equal(fdFlags(r) & 0o4000, 0);
    assert.throws(() => setNonblocking(-1, true), (e: unknown) => isCode(e, "InvalidArgument") && /EBADF/.test(String(e)));
  } finally {
    closeSync(r);
    closeSync(w);
  }
});

/** A pauseOnConnect unix listener; resolves the first connection's socket. */
async function listener(dir: string): Promise<{ path: string; server: net.Server; next: Promise<net.Socket> }> {
  const path = join(dir, "pty.sock");
  const server = net.createServer({ pauseOnConnect: true });
  const next = within<net.Socket>(5000, "a connection", (done) => server.once("connection", done));
  await within(5000, "listen", (done) => server.listen(path, () => done(undefined)));
  return { path, server, next };
}

function handleFd(socket: net.Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  assert.ok(typeof fd === "number" && fd >= 0, "socket has a handle fd");
  return fd;
}

/** Python: connect to argv[1], optionally wait, send "/dev/ptmx" + the read end of a pipe holding "hello". */
const SENDER = `
import os, socket, sys, time
r, w = os.pipe()
os.write(w, b"hello"); os.close(w)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(sys.argv[1])
time.sleep(float(sys.argv[2]))
socket.send_fds(s, [b"/dev/ptmx"], [r])
s.close()
`;

for (const delay of ["0", "0.3"]) {
  test(`recvFd receives an SCM_RIGHTS fd from a pauseOnConnect socket (sender delay ${delay}s)`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "sys-recvfd-"));
    const { path, server, next } = await listener(dir);
    const child = spawn("python3", ["-c", SENDER, path, delay], { stdio: "inherit" });
    try {
      const socket = await next;
      const sockFd = handleFd(socket);
      const fd = await recvFdAsync(sockFd, { signal: AbortSignal.timeout(5000) });
      socket.destroy();
      try {
        assert.notEqual(fd, sockFd);
        const buf = Buffer.alloc(16);
        assert.equal(buf.toString("utf8", 0, readSync(fd, buf)), "hello");
        assert.ok((fdFlags(fd) & 0o2000000) !== 0, "received fd is close-on-exec");
      } finally {
        closeSync(fd);
      }
      assert.deepEqual(await exitOf(child), [0, null]);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test("recvFd without data says EAGAIN; recvFdAsync honours its signal; a message without fd is refused", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sys-recvfd-"));
  const { path, server, next } = await listener(dir);
  const client = net.connect(path);
  try {
    const socket = await next;
    const fd = handleFd(socket);
    assert.throws(() => recvFd(fd), (e: unknown) => isCode(e, "Unavailable") && /EAGAIN/.test(String(e)));
    await assert.rejects(recvFdAsync(fd, { signal: AbortSignal.timeout(100) }), { name: "TimeoutError" });
    client.write("no fd here");
    await assert.rejects(recvFdAsync(fd, { signal: AbortSignal.timeout(5000) }), (e: unknown) => isCode(e, "InvalidArgument"));
    socket.destroy();
  } finally {
    client.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Python: openpty, send the master, then on each stdin line print the slave's size as seen by the slave. */
const PTY = `
import os, pty, socket, sys
m, s = pty.openpty()
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.connect(sys.argv[1])
socket.send_fds(c, [b"/dev/ptmx"], [m]); c.close(); os.close(m)
for line in sys.stdin:
    sz = os.get_terminal_size(s)
    print(sz.columns, sz.lines, flush=True)
`;

test("setWinsize on a pty master is seen on the slave (TIOCGWINSZ in another process)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sys-pty-"));
  const { path, server, next } = await listener(dir);
  const child = spawn("python3", ["-c", PTY, path], { stdio: ["pipe", "pipe", "inherit"] });
  try {
    const socket = await next;
    const master = await recvFdAsync(handleFd(socket), { signal: AbortSignal.timeout(5000) });
    socket.destroy();
    try {
      setWinsize(master, 132, 43);
      assert.deepEqual(getWinsize(master), { cols: 132, rows: 43 });
      assert.throws(() => setWinsize(master, 70000, 1), (e: unknown) => isCode(e, "InvalidArgument"));
      const out = child.stdout ? readAll(child.stdout) : Promise.resolve("");
      child.stdin?.end("size\n");
      assert.equal((await out).trim(), "132 43");
      assert.deepEqual(await exitOf(child), [0, null]);
    } finally {
      closeSync(master);
    }
    assert.throws(() => setWinsize(master, 80, 24), /EBADF/);
  } finally {
    child.kill();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
