// Input generators for test/e2e/fuzz.test.ts: a seeded PRNG, random protobuf messages, ttrpc frames
// (valid, mutated, oversized, truncated). Deterministic for a given seed, so a failure can be replayed.
import { ttrpc } from "../../src/gen/ttrpc.js";
import { FrameType, MAX_MESSAGE, encodeFrame, writeHeader, HEADER_SIZE } from "../../src/ttrpc/index.js";

/** mulberry32: small, fast, good enough for fuzzing; 32-bit seed. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

/**
 * Strings that stress id and path handling; never the id of the container under test. Paths that try to
 * escape point into `<root>/outside` (a directory the test makes), never at the host's own directories:
 * should the bundle check regress, a fuzzed CreateSandbox would write its rootfs and config.json there.
 */
export function stringPool(root: string): string[] {
  const out = `${root}/outside`;
  return [
    "", "fz-nope", "nope", "a", "x".repeat(76), "x".repeat(77), "x".repeat(5000), "../outside", "..", "a/b", "a\0b", "\0",
    "a\nb", "\x1b[31m", "é", "\u{1f600}", "\ud800", "unix:///tmp/x", "..%2f", out, `${out}/sub`, `${root}/bundles/fz-new`,
    `${root}/bundles/../outside`, `${root}/bundles/fz-link`, `${root}/bundles`, root, "/nonexistent/x", "-1",
    "type.googleapis.com/runtime.v1.PodSandboxConfig", "containerd.runc.v1.Options", "runtimeoptions.v1.Options",
  ];
}

const ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/** A random valid identifier (unknown to the daemon: the container under test is "fz-ctr"). */
export function randomId(r: Rng): string {
  const runs = 1 + r.int(3);
  const parts: string[] = [];
  for (let i = 0; i < runs; i++) parts.push(Array.from({ length: 1 + r.int(12) }, () => r.pick([...ALNUM])).join(""));
  return parts.join(r.pick([".", "_", "-"]));
}

function varint(n: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return out;
}

/** A random protobuf message: mostly well-formed fields 1-12, sometimes bad wire types or truncation. */
export function randomProto(r: Rng, pool: readonly string[], depth = 0): Buffer {
  const parts: Buffer[] = [];
  const fields = r.int(depth === 0 ? 9 : 4);
  for (let i = 0; i < fields; i++) {
    const num = r.chance(0.9) ? 1 + r.int(12) : 1 + r.int(2 ** 29 - 1);
    const wt = r.chance(0.95) ? r.pick([0, 0, 2, 2, 2, 1, 5]) : r.pick([3, 4, 6, 7]);
    parts.push(Buffer.from(varint(BigInt(num) * 8n + BigInt(wt))));
    if (wt === 0) {
      const v = r.pick([0n, 1n, 9n, 15n, 255n, 2n ** 31n, 2n ** 32n + 5n, -1n, BigInt(r.int(1 << 30))]);
      parts.push(Buffer.from(varint(v)));
    } else if (wt === 1) parts.push(r.bytes(8));
    else if (wt === 5) parts.push(r.bytes(4));
    else if (wt === 2) {
      const body = depth < 2 && r.chance(0.25) ? randomProto(r, pool, depth + 1)
        : r.chance(0.5) ? Buffer.from(r.pick(pool), "utf8") : r.chance(0.6) ? Buffer.from(randomId(r)) : r.bytes(r.int(64));
      const len = r.chance(0.97) ? body.length : r.int(1 << 20); // sometimes a lying length
      parts.push(Buffer.from(varint(BigInt(len))), body);
    }
  }
  if (r.chance(0.03)) parts.push(Buffer.from([0x80, 0x80])); // truncated varint
  return Buffer.concat(parts);
}

/** The services and methods a fuzz request may name, plus a few that do not exist. */
export interface Targets {
  services: { service: string; methods: string[] }[];
}

/** A ttrpc Request envelope (encoded) for a random method with `payload`. */
export function requestBytes(r: Rng, t: Targets, payload: Uint8Array): Uint8Array {
  const s = r.chance(0.97) ? r.pick(t.services) : { service: r.pick(["", "containerd.task.v1.Task", "x"]), methods: ["Create"] };
  const method = r.chance(0.98) ? r.pick(s.methods) : r.pick(["", "Nope", "create"]);
  const req: ttrpc.Request.$Properties = { service: s.service, method, payload };
  if (r.chance(0.2)) req.timeoutNano = r.pick([1, 1000, 5e6, 1e9, 2 ** 53]);
  if (r.chance(0.1)) req.metadata = [{ key: r.pick(["", "x", "containerd-namespace"]), value: r.pick(["", "k8s.io", "\0"]) }];
  return ttrpc.Request.encode(req).finish();
}

/** One whole Request frame. */
export function requestFrame(streamId: number, body: Uint8Array): Buffer {
  return encodeFrame(streamId, FrameType.Request, 0, body);
}

/** A copy of `frame` with 1-4 random mutations (bytes, header fields, truncation, insertion). */
export function mutate(r: Rng, frame: Buffer): Buffer {
  let b = Buffer.from(frame);
  for (let n = 1 + r.int(4); n > 0; n--) {
    const op = r.int(8);
    if (op === 0 && b.length > 0) {
      const i = r.int(b.length);
      b[i] = b[i]! ^ (1 << r.int(8));
    }
    else if (op === 1 && b.length > 0) b[r.int(b.length)] = r.int(256);
    else if (op === 2) b = b.subarray(0, r.int(b.length + 1));
    else if (op === 3) {
      const at = r.int(b.length + 1);
      b = Buffer.concat([b.subarray(0, at), r.bytes(1 + r.int(16)), b.subarray(at)]);
    } else if (op === 4 && b.length >= 4) b.writeUInt32BE(r.pick([0, 1, b.length, MAX_MESSAGE, MAX_MESSAGE + 1, r.int(2 ** 32)]), 0);
    else if (op === 5 && b.length >= 8) b.writeUInt32BE(r.pick([0, 2, 1, 3, 2 ** 32 - 1, r.int(2 ** 32)]), 4);
    else if (op === 6 && b.length >= 10) b[8] = r.pick([0, 2, 3, 4, 255]);
    else if (op === 7 && b.length >= 10) b[9] = r.int(256);
  }
  return b;
}

/** A header declaring more than the 4 MiB limit, followed by up to 64 KiB of its data (never all). */
export function oversizedStart(r: Rng, streamId: number): Buffer {
  const len = MAX_MESSAGE + 1 + r.int(2 ** 32 - MAX_MESSAGE - 2);
  const head = Buffer.alloc(HEADER_SIZE);
  writeHeader(head, 0, len, streamId, FrameType.Request, 0);
  return Buffer.concat([head, r.bytes(r.int(65536))]);
}

/** A valid frame cut short: the header promises more than is sent (a stream left half open). */
export function truncatedFrame(r: Rng, frame: Buffer): Buffer {
  return frame.subarray(0, HEADER_SIZE + r.int(Math.max(1, frame.length - HEADER_SIZE)));
}
