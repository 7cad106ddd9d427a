import assert from "node:assert/strict";
import { suite, test, type TestContext } from "node:test";
import { FrameType, encodeFrame } from "../../src/ttrpc/frame.js";
import { RawConn, startServer, within } from "./harness.js";

const header = (length: number, streamId: number, type: number, flags = 0): Buffer => {
  const b = Buffer.alloc(10);
  b.writeUInt32BE(length, 0);
  b.writeUInt32BE(streamId, 4);
  b[8] = type;
  b[9] = flags;
  return b;
};

/** After bad input, the server must still answer a good call on a new connection. */
async function stillServes(t: TestContext, path: string): Promise<void> {
  const fresh = await RawConn.open(t, path);
  await fresh.echoOk(1);
}

void suite("Server on malformed input", () => {
  void test("answers a 4 MiB + 1 request with RESOURCE_EXHAUSTED and keeps the connection", async (t) => {
    const { path } = await startServer(t);
    const raw = await RawConn.open(t, path);
    const n = (4 << 20) + 1;
    raw.write(header(n, 1, FrameType.Request));
    raw.write(Buffer.alloc(n, 0xff));
    const r = await raw.response(5000);
    assert.deepEqual([r.streamId, r.code], [1, 8]);
    assert.equal(r.message, `message length ${n} exceed maximum message size of ${4 << 20}`);
    await raw.echoOk(3);
    await stillServes(t, path);
  });

  void test("never buffers a header declaring 100 MB", async (t) => {
    const { path } = await startServer(t);
    const raw = await RawConn.open(t, path);
    const before = process.memoryUsage().arrayBuffers;
    raw.write(header(100_000_000, 1, FrameType.Request));
    raw.write(Buffer.alloc(8 << 20, 1));
    await stillServes(t, path);
    assert.ok(process.memoryUsage().arrayBuffers - before < 64 << 20, "no 100 MB allocation");
    raw.socket.destroy();
    await stillServes(t, path);
  });

  void test("ignores an unknown message type", async (t) => {
    const { path } = await startServer(t);
    const raw = await RawConn.open(t, path);
    raw.write(encodeFrame(1, 0x7f, 0, Buffer.from("future")));
    raw.write(encodeFrame(3, FrameType.Response, 0, new Uint8Array(0)));
    await raw.echoOk(5);
  });

  void test("answers garbage in a Request with INVALID_ARGUMENT", async (t) => {
    const { path } = await startServer(t);
    const raw = await RawConn.open(t, path);
    raw.write(encodeFrame(1, FrameType.Request, 0, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])));
    const r = await raw.response();
    assert.deepEqual([r.streamId, r.code], [1, 3]);
    raw.write(encodeFrame(3, FrameType.Request, 0, Buffer.from([0x0f, 0x0f, 0x0f])));
    assert.deepEqual((await raw.response()).code, 3);
    await raw.echoOk(5);
    await stillServes(t, path);
  });

  void test("survives a truncated header followed by close", async (t) => {
    const { server, path } = await startServer(t);
    const raw = await RawConn.open(t, path);
    raw.socket.end(header(5, 1, FrameType.Request).subarray(0, 6));
    await within(raw.closed, 2000, "server to close the connection");
    await stillServes(t, path);
    assert.equal(server.activeConnections, 1);
  });

  void test("rejects an even stream id with INVALID_ARGUMENT on that id", async (t) => {
    const { path } = await startServer(t);
    const raw = await RawConn.open(t, path);
    raw.request(2, { service: "Test", method: "Echo" });
    const r = await raw.response();
    assert.deepEqual([r.streamId, r.code, r.message], [2, 3, "StreamID must be odd for client initiated streams"]);
    raw.request(0, { service: "Test", method: "Echo" });
    assert.deepEqual((await raw.response()).streamId, 0);
    await raw.echoOk(1);
  });

  void test("rejects a stream id that does not increase", async (t) => {
    const { path } = await startServer(t);
    const raw = await RawConn.open(t, path);
    await raw.echoOk(5);
    raw.request(5, { service: "Test", method: "Echo" });
    const r = await raw.response();
    assert.deepEqual([r.streamId, r.code, r.message], [5, 3, "StreamID cannot be re-used and must increment"]);
    raw.request(3, { service: "Test", method: "Echo" });
    assert.equal((await raw.response()).code, 3);
    await raw.echoOk(7);
  });

  void test("answers a Data frame for an unknown stream with INVALID_ARGUMENT", async (t) => {
    const { path } = await startServer(t);
    const raw = await RawConn.open(t, path);
    raw.write(encodeFrame(9, FrameType.Data, 0, Buffer.from("x")));
    const r = await raw.response();
    assert.deepEqual([r.streamId, r.code, r.message], [9, 3, "StreamID is no longer active"]);
    await raw.echoOk(11);
  });

  void test("stays up under random frames", async (t) => {
    const { path } = await startServer(t);
    let seed = 42;
    const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) >>> 0), seed % n);
    for (let c = 0; c < 20; c++) {
      const raw = await RawConn.open(t, path);
      for (let i = 0; i < 50; i++) {
        const body = Buffer.alloc(rand(64));
        for (let j = 0; j < body.length; j++) body[j] = rand(256);
        const lie = rand(4) === 0 ? rand(128) : body.length;
        raw.write(Buffer.concat([header(lie, rand(16), rand(5), rand(8)), body]));
      }
      raw.socket.destroy();
    }
    await stillServes(t, path);
  });
});
