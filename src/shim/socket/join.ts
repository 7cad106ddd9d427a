/**
 * Joining a running daemon's group without racing its exit.
 *
 * A daemon that serves a group (a pod, or every pod of a namespace with `grouping = "namespace"`) exits
 * once a Shutdown was asked for and it holds nothing. A `start` that finds the group's socket live prints
 * its address, and containerd connects and sends Create a moment later: if the daemon decided to exit in
 * between, that Create fails with "ttrpc: closed" (seen on 1.6, 1.7 and 2.1 with namespace grouping and
 * containers starting while others go). So `start` does not join on a probe alone: it calls Join with the
 * container's id, and the daemon either answers Unavailable (it is already leaving: `start` waits for the
 * socket to go and binds a new one) or holds the id as a member until that id's Create or Shutdown has
 * settled, or for {@link JOIN_TTL_MS} if containerd sends neither.
 *
 * The client half runs in `start`, which loads as little as possible: the one request and its answer are
 * encoded here by hand (ttrpc.Request: service 1, method 2, payload 3; ttrpc.Response: status 1 with
 * google.rpc.Status code 1), with no generated code.
 */
import net from "node:net";
import { invalidArgument, unavailable } from "../../errdefs.js";
import { encodeFrame, FrameDecoder, FrameType, type Method } from "../../ttrpc/index.js";
import { bindSocket } from "./socket.js";
import { pushVarint } from "../invocation/wire.js";

/** Our own service, next to containerd's; an older daemon without it answers NotFound ("joined"). */
export const GROUP_SERVICE = "containerd.shim.ts.v1.Group";
/** How long a member is held when its Create never comes. */
export const JOIN_TTL_MS = 60_000;
const JOIN_TIMEOUT_MS = 10_000;
const UNAVAILABLE = 14;
/** How long `start` waits for a leaving daemon's socket to go. It unlinks it first thing at shutdown. */
const LEAVING_DEADLINE_MS = 10_000;

/** Members that joined and whose Create has not settled yet. */
export class GroupMembers {
  private readonly pending = new Map<string, NodeJS.Timeout>();

  /** `onRelease` runs whenever a member is released (its Create settled, or it expired). */
  constructor(private readonly onRelease: () => void, private readonly ttlMs = JOIN_TTL_MS) {}

  get size(): number {
    return this.pending.size;
  }

  hold(id: string): void {
    clearTimeout(this.pending.get(id));
    const timer = setTimeout(() => this.release(id), this.ttlMs);
    timer.unref();
    this.pending.set(id, timer);
  }

  release(id: string): void {
    const timer = this.pending.get(id);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.pending.delete(id);
    this.onRelease();
  }

  /** The Group service's methods. `leaving()` is true once the daemon decided to exit. */
  methods(leaving: () => boolean): Record<string, Method> {
    return {
      Join: {
        call: (payload) => {
          const id = Buffer.from(payload).toString("utf8");
          if (id === "" || payload.length > 1024) return Promise.reject(invalidArgument("Cannot join: the id must be 1 to 1024 bytes"));
          if (leaving()) return Promise.reject(unavailable("Cannot join: the shim is shutting down"));
          this.hold(id);
          return Promise.resolve(new Uint8Array());
        },
      },
    };
  }
}

/** Wraps a Create or Shutdown method: the member it names is released once the call settled, either way. */
export function releasingAfter(method: Method, members: GroupMembers, idOf: (payload: Uint8Array) => string): Method {
  return {
    async call(payload, ctx) {
      let id: string | undefined;
      try {
        id = idOf(payload);
      } catch {
        // the method itself answers the bad payload
      }
      try {
        return await method.call(payload, ctx);
      } finally {
        if (id !== undefined) members.release(id);
      }
    },
  };
}

/** A length-delimited field `n` holding `bytes`. */
function field(n: number, bytes: Uint8Array): Buffer {
  const head = [(n << 3) | 2];
  pushVarint(head, bytes.length);
  return Buffer.concat([Buffer.from(head), bytes]);
}

/** Reads a varint at `pos`; returns [value, next position], or undefined past the end. */
function varint(b: Uint8Array, pos: number): [number, number] | undefined {
  let v = 0;
  for (let shift = 0; pos < b.length && shift < 35; shift += 7) {
    const byte = b[pos++]!;
    v += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return [v, pos];
  }
  return undefined;
}

/** The status code of a ttrpc.Response (0 when it has none). */
export function responseCode(res: Uint8Array): number {
  for (let pos = 0; pos < res.length;) {
    const key = varint(res, pos);
    if (key === undefined) return 0;
    pos = key[1];
    const wire = key[0] & 7;
    if (wire === 0) {
      const v = varint(res, pos);
      if (v === undefined) return 0;
      pos = v[1];
      continue;
    }
    if (wire !== 2) return 0;
    const len = varint(res, pos);
    if (len === undefined) return 0;
    const body = res.subarray(len[1], len[1] + len[0]);
    pos = len[1] + len[0];
    if (key[0] >>> 3 !== 1) continue;
    for (let p = 0; p < body.length;) { // google.rpc.Status: code = 1 (varint)
      const k = varint(body, p);
      if (k === undefined) return 0;
      if (k[0] === 8) return varint(body, k[1])?.[0] ?? 0;
      if ((k[0] & 7) !== 2) return 0;
      const l = varint(body, k[1]);
      if (l === undefined) return 0;
      p = l[1] + l[0];
    }
  }
  return 0;
}

/**
 * Asks the daemon at `sockPath` to hold `id`. "leaving": it refused (shutting down), closed, or is gone;
 * "joined": it holds the id, or is an older daemon without Join, or did not answer within the timeout
 * (treated as before Join existed: the probe found it live).
 */
export function joinGroup(sockPath: string, id: string, timeoutMs = JOIN_TIMEOUT_MS): Promise<"joined" | "leaving"> {
  return new Promise((resolve) => {
    const sock = net.connect({ path: sockPath });
    const decoder = new FrameDecoder({ maxData: 1 << 16 });
    const done = (answer: "joined" | "leaving"): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done("joined"), timeoutMs);
    sock.once("error", () => done("leaving"));
    sock.once("close", () => done("leaving"));
    sock.once("connect", () => {
      const req = Buffer.concat([field(1, Buffer.from(GROUP_SERVICE)), field(2, Buffer.from("Join")), field(3, Buffer.from(id))]);
      sock.write(encodeFrame(1, FrameType.Request, 0, req));
    });
    sock.on("data", (chunk: Buffer) => {
      let frames;
      try {
        frames = decoder.push(chunk);
      } catch {
        return done("leaving");
      }
      for (const f of frames) {
        if (f.kind !== "frame" || f.streamId !== 1 || f.type !== FrameType.Response) continue;
        done(responseCode(f.data) === UNAVAILABLE ? "leaving" : "joined");
      }
    });
  });
}

/**
 * Binds the group's socket for a new daemon, or joins the daemon serving it. A daemon that answers it is
 * leaving is waited out (it unlinks its socket as the first step of its shutdown), then the socket bound.
 */
export async function bindOrJoin(sockPath: string, id: string, onLeaving: () => void): Promise<net.Server | "joined"> {
  const deadline = Date.now() + LEAVING_DEADLINE_MS;
  for (;;) {
    const bound = await bindSocket(sockPath);
    if (bound !== "live") return bound;
    if (await joinGroup(sockPath, id) === "joined") return "joined";
    onLeaving();
    if (Date.now() > deadline) throw new Error(`Cannot start: the shim at "${sockPath}" is shutting down and still holds its socket`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
