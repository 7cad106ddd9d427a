/**
 * ttrpc envelope messages (`ttrpc.Request`, `ttrpc.Response`) framed for the wire. The OK response,
 * the hot path, is encoded by hand straight into its frame buffer (one allocation, one copy); the
 * bytes are what protobuf's encoder produces for `Response{payload}` (field 2, length-delimited;
 * omitted when empty, as proto3 omits defaults).
 */
import { ttrpc } from "../gen/ttrpc.js";
import { HEADER_SIZE, FrameType, encodeFrame, writeHeader } from "./frame.js";

const PAYLOAD_TAG = (2 << 3) | 2;

/** Longest error message put on the wire; longer ones are cut (a status must always fit a frame). */
const MAX_STATUS_MESSAGE = 64 << 10;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Encoded size of an OK `ttrpc.Response` carrying `payloadLength` bytes. */
export function okResponseSize(payloadLength: number): number {
  return payloadLength === 0 ? 0 : 1 + varintSize(payloadLength) + payloadLength;
}

/** A complete Response frame for a successful call. */
export function encodeOkResponseFrame(streamId: number, payload: Uint8Array): Buffer {
  const size = okResponseSize(payload.length);
  const out = Buffer.allocUnsafe(HEADER_SIZE + size);
  writeHeader(out, 0, size, streamId, FrameType.Response, 0);
  if (size === 0) return out;
  let pos = HEADER_SIZE;
  out[pos++] = PAYLOAD_TAG;
  let n = payload.length;
  while (n >= 0x80) {
    out[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[pos++] = n;
  out.set(payload, pos);
  return out;
}

/** A complete Response frame carrying a non-OK `google.rpc.Status` and no payload. */
export function encodeStatusResponseFrame(streamId: number, code: number, message: string): Buffer {
  const text = message.length > MAX_STATUS_MESSAGE ? message.slice(0, MAX_STATUS_MESSAGE) : message;
  const data = ttrpc.Response.encode({ status: { code, message: text } }).finish();
  return encodeFrame(streamId, FrameType.Response, 0, data);
}

/** A complete Request frame. */
export function encodeRequestFrame(streamId: number, req: ttrpc.Request.$Properties): Buffer {
  return encodeFrame(streamId, FrameType.Request, 0, ttrpc.Request.encode(req).finish());
}

const NO_METADATA: ReadonlyMap<string, string[]> = new Map();

/** Groups repeated `KeyValue` metadata by key, keeping arrival order. */
export function metadataMap(kvs: readonly ttrpc.KeyValue.$Properties[]): ReadonlyMap<string, string[]> {
  if (kvs.length === 0) return NO_METADATA;
  const m = new Map<string, string[]>();
  for (const kv of kvs) {
    const key = kv.key ?? "";
    const list = m.get(key);
    if (list === undefined) m.set(key, [kv.value ?? ""]);
    else list.push(kv.value ?? "");
  }
  return m;
}
