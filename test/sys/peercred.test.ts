// SO_PEERCRED through koffi, and the shim's same-user hook built on it (src/shim/socket/socket.ts).
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { suite, test, type TestContext } from "node:test";
import { Logger, MemorySink } from "../../src/log.js";
import { requireSameUser } from "../../src/shim/socket/socket.js";
import { peerCredentials } from "../../src/sys/index.js";
import { within } from "./util.js";

/** A listening unix socket in a temp dir; resolves the server side of the first connection. */
async function pair(t: TestContext): Promise<{ server: net.Socket; client: net.Socket }> {
  const dir = mkdtempSync(path.join(tmpdir(), "peercred-"));
  const sock = path.join(dir, "s.sock");
  const listener = net.createServer();
  await new Promise<void>((resolve, reject) => listener.once("error", reject).listen(sock, resolve));
  const accepted = within<net.Socket>(2000, "a connection", (done) => listener.once("connection", done));
  const client = net.connect(sock);
  const server = await accepted;
  t.after(() => {
    client.destroy();
    server.destroy();
    listener.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { server, client };
}

const fdOf = (s: net.Socket): number => (s as unknown as { _handle: { fd: number } })._handle.fd;

void suite("peerCredentials", () => {
  void test("gives the connecting process's pid and effective uid/gid", async (t) => {
    const { server } = await pair(t);
    assert.deepEqual(peerCredentials(fdOf(server)), { pid: process.pid, uid: process.geteuid!(), gid: process.getegid!() });
  });

  void test("throws naming the errno for an fd that is not a socket", (t) => {
    const fd = openSync("/dev/null", "r");
    t.after(() => closeSync(fd));
    assert.throws(() => peerCredentials(fd), /Cannot getsockopt SO_PEERCRED on fd \d+: ENOTSOCK/);
  });
});

void suite("requireSameUser", () => {
  void test("serves a peer with the shim's own euid and egid", async (t) => {
    const { server } = await pair(t);
    const sink = new MemorySink();
    assert.equal(requireSameUser(new Logger(sink))(server), true);
    assert.deepEqual(sink.lines, []);
  });

  void test("refuses a peer of another uid or gid, logging its uid, gid and pid at warn", async (t) => {
    const { server } = await pair(t);
    const sink = new MemorySink();
    const me = { uid: process.geteuid!(), gid: process.getegid!() };
    assert.equal(requireSameUser(new Logger(sink), { uid: me.uid + 1, gid: me.gid })(server), false);
    assert.equal(requireSameUser(new Logger(sink), { uid: me.uid, gid: me.gid + 1 })(server), false);
    assert.equal(sink.lines.length, 2);
    for (const line of sink.lines) {
      assert.match(line, /level=warn msg="refusing connection from another user"/);
      assert.match(line, new RegExp(`peer_uid=${me.uid} peer_gid=${me.gid} peer_pid=${process.pid} `));
    }
  });

  void test("refuses a connection whose credentials cannot be read", async (t) => {
    const { server } = await pair(t);
    server.destroy(); // no handle any more
    const sink = new MemorySink();
    assert.equal(requireSameUser(new Logger(sink))(server), false);
    assert.match(sink.lines[0] ?? "", /level=warn msg="refusing connection: cannot read peer credentials"/);
  });
});
