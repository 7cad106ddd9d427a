import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { ttrpc } from "../../src/gen/ttrpc.js";
import { encodeOkResponseFrame, encodeStatusResponseFrame, metadataMap, okResponseSize } from "../../src/ttrpc/envelope.js";
import { FrameDecoder, FrameType, MAX_MESSAGE, encodeFrame, type DecodedFrame } from "../../src/ttrpc/frame.js";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

void suite("encodeFrame()", () => {
  void test("writes the 10-byte big-endian header then the data", () => {
    const f = encodeFrame(0x01020305, FrameType.Request, 0x02, Uint8Array.of(0xaa, 0xbb, 0xcc));
    assert.equal(hex(f), "00000003" + "01020305" + "01" + "02" + "aabbcc");
  });

  void test("encodes an empty Response on stream 1 as a bare header", () => {
    assert.equal(hex(encodeFrame(1, FrameType.Response, 0, new Uint8Array(0))), "00000000000000010200");
  });

  void test("encodes the largest stream id and a 4 MiB length", () => {
    const f = encodeFrame(0xffffffff, FrameType.Data, 0x05, new Uint8Array(MAX_MESSAGE));
    assert.equal(hex(f.subarray(0, 10)), "00400000" + "ffffffff" + "03" + "05");
  });
});

void suite("FrameDecoder", () => {
  const a = encodeFrame(1, FrameType.Request, 0, Buffer.from("hello"));
  const b = encodeFrame(3, FrameType.Request, 0, new Uint8Array(0));
  const c = encodeFrame(5, FrameType.Data, 1, Buffer.alloc(300, 7));
  const all = Buffer.concat([a, b, c]);

  const check = (frames: DecodedFrame[]): void => {
    assert.deepEqual(
      frames.map((f) => [f.kind, f.streamId, f.type, f.flags, f.kind === "frame" ? hex(f.data) : f.length]),
      [
        ["frame", 1, 1, 0, hex(Buffer.from("hello"))],
        ["frame", 3, 1, 0, ""],
        ["frame", 5, 3, 1, hex(Buffer.alloc(300, 7))],
      ],
    );
  };

  void test("decodes several frames coalesced in one chunk", () => {
    check(new FrameDecoder().push(all));
  });

  void test("decodes frames fed one byte at a time", () => {
    const d = new FrameDecoder();
    const out: DecodedFrame[] = [];
    for (const byte of all) out.push(...d.push(Uint8Array.of(byte)));
    check(out);
    assert.equal(d.idle, true);
  });

  void test("decodes frames split at every possible offset", () => {
    for (let i = 0; i <= all.length; i++) {
      const d = new FrameDecoder();
      check([...d.push(all.subarray(0, i)), ...d.push(all.subarray(i))]);
    }
  });

  void test("reports a partial header as not idle", () => {
    const d = new FrameDecoder();
    assert.deepEqual(d.push(a.subarray(0, 4)), []);
    assert.equal(d.idle, false);
  });

  void test("discards an oversized frame as it streams by, then reports it", () => {
    const d = new FrameDecoder({ maxData: 16 });
    const big = encodeFrame(7, FrameType.Request, 0, Buffer.alloc(17, 1));
    assert.deepEqual(d.push(big.subarray(0, 12)), []);
    assert.deepEqual(d.push(big.subarray(12, 20)), []);
    const out = d.push(Buffer.concat([big.subarray(20), a]));
    assert.equal(out.length, 2);
    assert.deepEqual(out[0], { kind: "oversized", streamId: 7, type: 1, flags: 0, length: 17 });
    assert.equal(out[1]?.streamId, 1);
  });

  void test("accepts a frame of exactly the maximum size", () => {
    const d = new FrameDecoder({ maxData: 16 });
    const out = d.push(encodeFrame(1, FrameType.Request, 0, Buffer.alloc(16)));
    assert.equal(out[0]?.kind, "frame");
  });

  void test("does not allocate for a header declaring 100 MB", () => {
    const d = new FrameDecoder();
    const header = Buffer.from("05f5e10000000001" + "0100", "hex");
    const before = process.memoryUsage().arrayBuffers;
    assert.deepEqual(d.push(header), []);
    assert.deepEqual(d.push(Buffer.alloc(1 << 20)), []);
    assert.ok(process.memoryUsage().arrayBuffers - before < 16 << 20);
  });
});

void suite("Response envelopes", () => {
  void test("hand-encodes OK responses exactly as protobuf does", () => {
    for (const n of [0, 1, 127, 128, 300, 16383, 16384, 70000]) {
      const payload = Buffer.alloc(n, 0x5a);
      const want = encodeFrame(9, FrameType.Response, 0, ttrpc.Response.encode({ payload }).finish());
      assert.equal(hex(encodeOkResponseFrame(9, payload)), hex(want), `payload of ${n} bytes`);
      assert.equal(okResponseSize(n), want.length - 10);
    }
  });

  void test("encodes a status response that decodes back", () => {
    const f = encodeStatusResponseFrame(3, 5, "container not created: not found");
    const r = ttrpc.Response.decode(f.subarray(10));
    assert.equal(r.status?.code, 5);
    assert.equal(r.status?.message, "container not created: not found");
    assert.equal(r.payload.length, 0);
  });

  void test("groups repeated metadata keys in order", () => {
    const m = metadataMap([
      { key: "a", value: "1" },
      { key: "b", value: "2" },
      { key: "a", value: "3" },
    ]);
    assert.deepEqual([...m], [["a", ["1", "3"]], ["b", ["2"]]]);
  });
});
