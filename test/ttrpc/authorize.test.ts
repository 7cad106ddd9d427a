// The Server's `authorize` hook: runs on every accepted connection before anything is read from it; a
// refused (or throwing) hook closes the connection unanswered and no handler runs.
import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { suite, test, type TestContext } from "node:test";
import { Logger, MemorySink } from "../../src/log.js";
import { Server, type Authorize, type Method } from "../../src/ttrpc/index.js";
import { RawConn, tmpDir, within } from "./harness.js";

/** A server with `Test.Echo` counting its calls, behind `authorize`. */
async function serve(t: TestContext, authorize: Authorize, log?: Logger) {
  const path = join(await tmpDir(t), "s.sock");
  let calls = 0;
  const echo: Method = { call: async (payload) => (calls++, payload) };
  const server = new Server({ authorize, ...(log ? { log } : {}) });
  server.register("Test", { Echo: echo });
  const listener = createServer();
  await new Promise<void>((resolve, reject) => listener.once("error", reject).listen(path, resolve));
  server.serve(listener);
  t.after(() => server.close());
  return { server, path, calls: () => calls };
}

/** Opens a connection and sends one Echo request at once, as a client would. */
async function requestOnce(t: TestContext, path: string): Promise<RawConn> {
  const raw = await RawConn.open(t, path);
  raw.request(1, { service: "Test", method: "Echo", payload: Buffer.from("hi") });
  return raw;
}

void suite("Server authorize hook", () => {
  void test("a refused connection is closed without an answer, its request never read nor handled", async (t) => {
    const seen: { bytesRead: number; socket: Socket }[] = [];
    const s = await serve(t, (socket) => (seen.push({ bytesRead: socket.bytesRead, socket }), false));
    const raw = await requestOnce(t, s.path);
    await within(raw.closed, 2000, "the server to close the connection");
    await assert.rejects(raw.next(100), /closed/);
    assert.equal(seen.length, 1, "the hook ran once for the connection");
    assert.equal(seen[0]!.bytesRead, 0, "the hook ran before anything was read");
    assert.equal(seen[0]!.socket.destroyed, true);
    assert.equal(s.calls(), 0, "no handler ran");
    assert.equal(s.server.activeConnections, 0);
  });

  void test("an accepted connection is served, and the hook runs again for each new connection", async (t) => {
    let runs = 0;
    const s = await serve(t, () => (runs++, true));
    const a = await RawConn.open(t, s.path);
    await a.echoOk(1);
    const b = await RawConn.open(t, s.path);
    await b.echoOk(1);
    await a.echoOk(3);
    assert.equal(runs, 2);
    assert.equal(s.calls(), 3);
  });

  void test("a hook that throws refuses the connection and is logged at warn", async (t) => {
    const sink = new MemorySink();
    const s = await serve(t, () => {
      throw new Error("no credentials");
    }, new Logger(sink, "debug"));
    const raw = await requestOnce(t, s.path);
    await within(raw.closed, 2000, "the server to close the connection");
    assert.equal(s.calls(), 0);
    const line = sink.lines.find((l) => l.includes("authorization failed"));
    assert.ok(line, `no warn line in ${JSON.stringify(sink.lines)}`);
    assert.match(line, /level=warn .*error="?no credentials/);
  });

  void test("a hook deciding per connection: refused peers do not disturb accepted ones", async (t) => {
    let n = 0;
    const s = await serve(t, () => n++ % 2 === 0);
    const ok = await RawConn.open(t, s.path);
    const refused = await requestOnce(t, s.path);
    await within(refused.closed, 2000, "the refused connection to close");
    await ok.echoOk(1);
    assert.equal(s.calls(), 1);
    assert.equal(s.server.activeConnections, 1);
  });
});
