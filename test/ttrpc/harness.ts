/** Test harness for ttrpc: temp dirs, a served Server, raw frame-level sockets, deadlines. */
import { mkdtemp, rm } from "node:fs/promises";
import { createConnection, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { ttrpc } from "../../src/gen/ttrpc.js";
import { FrameDecoder, FrameType, encodeFrame, type DecodedFrame } from "../../src/ttrpc/frame.js";
import { once } from "node:events";
import { Server, type CallContext, type Method } from "../../src/ttrpc/index.js";

/** Rejects if `p` does not settle within `ms`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** A temp dir removed when the test ends. */
export async function tmpDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "ttrpc-test-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Raw bytes in, echoed out. */
export const echo: Method = { call: async (payload) => payload };

/** Starts a Server on a unix socket in a temp dir with `Test.Echo` plus `services`. */
export async function startServer(
  t: TestContext,
  services: Record<string, Method> = {},
  opts: { maxMessage?: number } = {},
): Promise<{ server: Server; path: string }> {
  const dir = await tmpDir(t);
  const path = join(dir, "s.sock");
  const server = new Server(opts);
  server.register("Test", { Echo: echo, ...services });
  const listener = createServer();
  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(path, resolve);
  });
  server.serve(listener);
  t.after(() => server.close());
  return { server, path };
}

/** A socket speaking raw frames, for malformed-input tests. */
export class RawConn {
  private readonly decoder = new FrameDecoder();
  private readonly frames: DecodedFrame[] = [];
  private waiter: (() => void) | undefined;
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on("data", (c: Buffer) => {
      this.frames.push(...this.decoder.push(c));
      this.waiter?.();
    });
    socket.on("error", () => {});
    this.closed = new Promise((resolve) => socket.on("close", () => resolve()));
    void this.closed.then(() => this.waiter?.());
  }

  static async open(t: TestContext, path: string): Promise<RawConn> {
    const socket = createConnection(path);
    await within(new Promise((resolve, reject) => socket.once("connect", resolve).once("error", reject)), 2000, "connect");
    t.after(() => socket.destroy());
    return new RawConn(socket);
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Sends a well-formed Request frame. */
  request(streamId: number, req: ttrpc.Request.$Properties): void {
    this.write(encodeFrame(streamId, FrameType.Request, 0, ttrpc.Request.encode(req).finish()));
  }

  /** The next frame from the server, decoded as a Response. */
  async response(ms = 2000): Promise<{ streamId: number; code: number; message: string; payload: Uint8Array }> {
    const f = await this.next(ms);
    if (f.kind !== "frame" || f.type !== FrameType.Response) throw new Error(`Unexpected frame ${JSON.stringify(f)}`);
    const r = ttrpc.Response.decode(f.data);
    return { streamId: f.streamId, code: r.status?.code ?? 0, message: r.status?.message ?? "", payload: r.payload };
  }

  async next(ms = 2000): Promise<DecodedFrame> {
    const deadline = Date.now() + ms;
    for (;;) {
      const f = this.frames.shift();
      if (f !== undefined) return f;
      if (this.socket.destroyed) throw new Error("Connection closed while waiting for a frame");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`No frame within ${ms} ms`);
      await within(new Promise<void>((resolve) => (this.waiter = resolve)), left, "a frame").catch(() => {});
      this.waiter = undefined;
    }
  }

  /** Asserts a good echo call works on this connection. */
  async echoOk(streamId: number): Promise<void> {
    const payload = Buffer.from(`ping-${streamId}`);
    this.request(streamId, { service: "Test", method: "Echo", payload });
    const r = await this.response();
    if (r.streamId !== streamId || r.code !== 0 || !Buffer.from(r.payload).equals(payload)) {
      throw new Error(`Bad echo answer ${JSON.stringify(r)}`);
    }
  }
}

/**
 * A method that blocks until released, handing its context out when it starts. With `watchSignal` it also
 * ends (throwing the reason) when its signal aborts; without, it never reads its signal.
 */
export function gated(watchSignal = true): { method: Method; started: Promise<CallContext>; release: () => void } {
  let onStart!: (ctx: CallContext) => void;
  let release!: () => void;
  const started = new Promise<CallContext>((r) => (onStart = r));
  const gate = new Promise<void>((r) => (release = r));
  const method: Method = {
    async call(payload, ctx) {
      onStart(ctx);
      if (!watchSignal) return (await gate, payload);
      await Promise.race([gate, once(ctx.signal, "abort")]);
      if (ctx.signal.aborted) throw ctx.signal.reason;
      return payload;
    },
  };
  return { method, started, release };
}
