/**
 * ttrpc framing: a 10-byte header followed by `length` bytes of data. Pure functions over bytes; the
 * only socket code lives in server.ts and client.ts.
 *
 * Header layout (big-endian): `length u32 [0,4) | stream id u32 [4,8) | type u8 [8] | flags u8 [9]`.
 */

/** Size of the frame header in bytes. */
export const HEADER_SIZE = 10;

/** Maximum data length of one frame (`4 << 20`), as in containerd/ttrpc `messageLengthMax`. */
export const MAX_MESSAGE = 4 << 20;

/** Frame message types. Unknown types are ignored by receivers for forward compatibility. */
export const FrameType = { Request: 1, Response: 2, Data: 3 } as const;

/** Frame flags (only meaningful for streaming, which the shim services do not use). */
export const Flags = { RemoteClosed: 0x1, RemoteOpen: 0x2, NoData: 0x4 } as const;

/** One complete frame. `data` may be a view into a chunk given to `FrameDecoder.push`. */
export interface Frame {
  kind: "frame";
  streamId: number;
  type: number;
  flags: number;
  data: Uint8Array;
}

/** A frame whose declared length exceeded the limit; its data was discarded without being buffered. */
export interface OversizedFrame {
  kind: "oversized";
  streamId: number;
  type: number;
  flags: number;
  length: number;
}

/** What `FrameDecoder.push` yields. */
export type DecodedFrame = Frame | OversizedFrame;

/** Writes a frame header into `out` at `offset`. */
export function writeHeader(out: Uint8Array, offset: number, length: number, streamId: number, type: number, flags: number): void {
  out[offset] = length >>> 24;
  out[offset + 1] = (length >>> 16) & 0xff;
  out[offset + 2] = (length >>> 8) & 0xff;
  out[offset + 3] = length & 0xff;
  out[offset + 4] = streamId >>> 24;
  out[offset + 5] = (streamId >>> 16) & 0xff;
  out[offset + 6] = (streamId >>> 8) & 0xff;
  out[offset + 7] = streamId & 0xff;
  out[offset + 8] = type & 0xff;
  out[offset + 9] = flags & 0xff;
}

/**
 * Encodes one frame (header + data) into a single new buffer, so that one socket write carries one
 * whole frame and concurrent writers can never interleave. The caller enforces the size limit.
 */
export function encodeFrame(streamId: number, type: number, flags: number, data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE + data.length);
  writeHeader(out, 0, data.length, streamId, type, flags);
  out.set(data, HEADER_SIZE);
  return out;
}

function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/** Decoder states (plain numbers: the state changes inside helper calls, which defeats TS narrowing). */
const State: { readonly Header: number; readonly Body: number; readonly Discard: number } = { Header: 0, Body: 1, Discard: 2 };

/**
 * Incremental frame decoder for a byte stream: handles frames split across reads and many frames in
 * one read. Frames that fit in one chunk are returned as zero-copy views of that chunk (valid as long
 * as the chunk is). A header declaring more than `maxData` bytes is never buffered: its data is
 * skipped as it arrives, and an `OversizedFrame` is yielded once all of it has gone by (mirrors
 * containerd/ttrpc `channel.recv`, which discards and then fails that stream with RESOURCE_EXHAUSTED).
 */
export class FrameDecoder {
  private readonly maxData: number;
  private state: number = State.Header;
  private readonly header = new Uint8Array(HEADER_SIZE);
  private headerFill = 0;
  private length = 0;
  private streamId = 0;
  private type = 0;
  private flags = 0;
  private body: Uint8Array | undefined;
  private bodyFill = 0;
  private discardLeft = 0;

  constructor(opts: { maxData?: number } = {}) {
    this.maxData = opts.maxData ?? MAX_MESSAGE;
  }

  /** True when no partial frame is pending (a clean place for the stream to end). */
  get idle(): boolean {
    return this.state === State.Header && this.headerFill === 0;
  }

  /** Feeds one chunk; returns every frame completed by it, in order. */
  push(chunk: Uint8Array): DecodedFrame[] {
    const out: DecodedFrame[] = [];
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.state === State.Header) {
        if (this.headerFill === 0 && end - pos >= HEADER_SIZE) {
          this.parseHeader(chunk, pos);
          pos += HEADER_SIZE;
          // Fast path: the whole frame is in this chunk, hand out a view.
          if (this.state === State.Body && end - pos >= this.length) {
            out.push(this.frame(chunk.subarray(pos, pos + this.length)));
            pos += this.length;
            this.state = State.Header;
          } else if (this.state === State.Header) {
            out.push(this.frame(chunk.subarray(pos, pos)));
          }
          continue;
        }
        const n = Math.min(HEADER_SIZE - this.headerFill, end - pos);
        this.header.set(chunk.subarray(pos, pos + n), this.headerFill);
        this.headerFill += n;
        pos += n;
        if (this.headerFill < HEADER_SIZE) break;
        this.headerFill = 0;
        this.parseHeader(this.header, 0);
        if (this.state === State.Header) out.push(this.frame(new Uint8Array(0)));
      } else if (this.state === State.Body) {
        if (this.body === undefined) {
          if (end - pos >= this.length) {
            out.push(this.frame(chunk.subarray(pos, pos + this.length)));
            pos += this.length;
            this.state = State.Header;
            continue;
          }
          this.body = new Uint8Array(this.length);
          this.bodyFill = 0;
        }
        const n = Math.min(this.length - this.bodyFill, end - pos);
        this.body.set(chunk.subarray(pos, pos + n), this.bodyFill);
        this.bodyFill += n;
        pos += n;
        if (this.bodyFill === this.length) {
          out.push(this.frame(this.body));
          this.body = undefined;
          this.state = State.Header;
        }
      } else {
        const n = Math.min(this.discardLeft, end - pos);
        this.discardLeft -= n;
        pos += n;
        if (this.discardLeft === 0) {
          out.push(this.oversized());
          this.state = State.Header;
        }
      }
    }
    return out;
  }

  private parseHeader(b: Uint8Array, o: number): void {
    this.length = readU32(b, o);
    this.streamId = readU32(b, o + 4);
    this.type = b[o + 8]!;
    this.flags = b[o + 9]!;
    if (this.length > this.maxData) {
      this.state = State.Discard;
      this.discardLeft = this.length;
    } else {
      this.state = this.length === 0 ? State.Header : State.Body;
    }
  }

  private frame(data: Uint8Array): Frame {
    return { kind: "frame", streamId: this.streamId, type: this.type, flags: this.flags, data };
  }

  private oversized(): OversizedFrame {
    return { kind: "oversized", streamId: this.streamId, type: this.type, flags: this.flags, length: this.length };
  }
}
