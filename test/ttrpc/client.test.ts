import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { suite, test, type TestContext } from "node:test";
import { ttrpc } from "../../src/gen/ttrpc.js";
import { FrameDecoder, FrameType, type Frame } from "../../src/ttrpc/frame.js";
import { encodeOkResponseFrame, encodeStatusResponseFrame } from "../../src/ttrpc/envelope.js";
import { Client } from "../../src/ttrpc/index.js";
import { tmpDir, within } from "./harness.js";

/** A frame-level fake server: records Request frames, answers through `answer`. */
async function fakeServer(
  t: TestContext,
  answer: (f: Frame, req: ttrpc.Request, sock: Socket) => void,
): Promise<{ path: string; requests: Array<{ streamId: number; req: ttrpc.Request }>; socket: () => Socket | undefined }> {
  const path = join(await tmpDir(t), "fake.sock");
  const requests: Array<{ streamId: number; req: ttrpc.Request }> = [];
  let last: Socket | undefined;
  const srv = createServer((sock) => {
    last = sock;
    sock.on("error", () => {});
    const d = new FrameDecoder();
    sock.on("data", (c: Buffer) => {
      for (const f of d.push(c)) {
        if (f.kind !== "frame" || f.type !== FrameType.Request) continue;
        const req = ttrpc.Request.decode(f.data);
        requests.push({ streamId: f.streamId, req });
        answer(f, req, sock);
      }
    });
  });
  await new Promise<void>((r) => srv.listen(path, r));
  t.after(() => {
    last?.destroy();
    srv.close();
  });
  return { path, requests, socket: () => last };
}

const echoBack = (f: Frame, req: ttrpc.Request, sock: Socket): void => {
  sock.write(encodeOkResponseFrame(f.streamId, req.payload));
};

void suite("Client", () => {
  void test("uses odd increasing stream ids and carries payload and metadata", async (t) => {
    const fake = await fakeServer(t, echoBack);
    const client = await Client.connect(fake.path);
    t.after(() => client.close());
    const out = await Promise.all([1, 2, 3].map((i) => client.call("S", "M", Buffer.from([i]), { metadata: { k: `v${i}` } })));
    assert.deepEqual(out.map((p) => [...p]), [[1], [2], [3]]);
    assert.deepEqual(fake.requests.map((r) => r.streamId), [1, 3, 5]);
    const first = fake.requests[0]!.req;
    assert.deepEqual([first.service, first.method, first.timeoutNano], ["S", "M", 0]);
    assert.deepEqual(first.metadata.map((kv) => [kv.key, kv.value]), [["k", "v1"]]);
  });

  void test("matches responses that arrive out of order", async (t) => {
    const held: Array<[Frame, ttrpc.Request, Socket]> = [];
    const fake = await fakeServer(t, (f, req, sock) => {
      held.push([f, req, sock]);
      if (held.length === 2) for (const h of held.reverse()) echoBack(...h);
    });
    const client = await Client.connect(fake.path);
    t.after(() => client.close());
    const [a, b] = await within(Promise.all([client.call("S", "M", Buffer.from("a")), client.call("S", "M", Buffer.from("b"))]), 2000, "calls");
    assert.deepEqual([Buffer.from(a).toString(), Buffer.from(b).toString()], ["a", "b"]);
  });

  void test("sends timeout_nano and fails locally at the deadline", async (t) => {
    const fake = await fakeServer(t, () => {});
    const client = await Client.connect(fake.path);
    t.after(() => client.close());
    await assert.rejects(within(client.call("S", "M", new Uint8Array(0), { timeoutMs: 20 }), 2000, "timeout"), { code: "DeadlineExceeded" });
    assert.equal(fake.requests[0]?.req.timeoutNano, 20_000_000);
    assert.equal(client.closed, false);
  });

  void test("rejects with the signal's reason when aborted", async (t) => {
    const fake = await fakeServer(t, () => {});
    const client = await Client.connect(fake.path);
    t.after(() => client.close());
    const ac = new AbortController();
    const call = client.call("S", "M", new Uint8Array(0), { signal: ac.signal });
    ac.abort(new Error("stop"));
    await assert.rejects(call, { message: "stop" });
  });

  void test("turns an error status into a ShimError", async (t) => {
    const fake = await fakeServer(t, (f, _req, sock) => sock.write(encodeStatusResponseFrame(f.streamId, 5, "container x: not found")));
    const client = await Client.connect(fake.path);
    t.after(() => client.close());
    await assert.rejects(client.call("S", "M", new Uint8Array(0)), { name: "ShimError", code: "NotFound", message: "container x: not found" });
  });

  void test("rejects pending calls with Unavailable and runs onClose when the server goes away", async (t) => {
    const fake = await fakeServer(t, (_f, _req, sock) => sock.destroy());
    const client = await Client.connect(fake.path);
    const closed = new Promise<void>((r) => client.onClose(r));
    await assert.rejects(client.call("S", "M", new Uint8Array(0)), { code: "Unavailable" });
    await within(closed, 2000, "onClose");
    assert.equal(client.closed, true);
    await assert.rejects(client.call("S", "M", new Uint8Array(0)), { code: "Unavailable" });
  });

  void test("fails to connect to a missing socket with Unavailable", async (t) => {
    await assert.rejects(Client.connect(join(await tmpDir(t), "none.sock")), { code: "Unavailable" });
  });
});
