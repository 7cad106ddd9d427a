// Folder src/ttrpc:
// Owns: the ttrpc protocol: frame codec, request/response envelopes, server and client, services, and the table
//   of gRPC status codes.
// Must not import: cgroups, runc, sandbox, shim, stdio, sys, task.

/**
 * ttrpc client: unary calls over one unix-socket connection, many in flight at once. Stream ids are
 * odd and increasing (1, 3, 5, ...), as the Go client allocates them.
 */
import { createConnection, type Socket } from "node:net";
import { ShimError } from "../errdefs.js";
import { ttrpc } from "../gen/ttrpc.js";
import { encodeRequestFrame } from "./envelope.js";
import { FrameDecoder, FrameType, HEADER_SIZE, MAX_MESSAGE, type DecodedFrame } from "./frame.js";
import type { MessageType } from "./service.js";
import { fromStatus } from "./status.js";

/** Options of one call. */
export interface CallOptions {
  /** Sent as `timeout_nano`; the call also fails locally with DeadlineExceeded when it passes. */
  timeoutMs?: number;
  metadata?: Record<string, string>;
  signal?: AbortSignal;
}

interface Pending {
  resolve(payload: Uint8Array): void;
  reject(err: Error): void;
}

const MAX_STREAM_ID = 0xffffffff;

/** A client connection. `close()` is idempotent; pending calls then reject with Unavailable. */
export class Client {
  private readonly decoder = new FrameDecoder({ maxData: MAX_MESSAGE });
  private readonly pending = new Map<number, Pending>();
  private readonly closeCallbacks: Array<() => void> = [];
  private nextId = 1;
  private isClosed = false;

  private constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", () => this.close());
    socket.on("end", () => this.close());
    socket.on("close", () => this.close());
  }

  /** Connects to a unix socket `path` (without `unix://`). */
  static connect(path: string, opts: { signal?: AbortSignal } = {}): Promise<Client> {
    const { signal } = opts;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const socket = createConnection(path);
      const onAbort = (): void => {
        socket.destroy();
        reject(signal?.reason);
      };
      const onError = (err: Error): void => {
        signal?.removeEventListener("abort", onAbort);
        reject(new ShimError("Unavailable", `Cannot connect to ttrpc socket "${path}": ${err.message}`, { cause: err }));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      socket.once("error", onError);
      socket.once("connect", () => {
        signal?.removeEventListener("abort", onAbort);
        socket.off("error", onError);
        resolve(new Client(socket));
      });
    });
  }

  /** True once the connection is closed (by either side). */
  get closed(): boolean {
    return this.isClosed;
  }

  /** Runs `cb` once when the connection closes (at once, asynchronously, if it already has). */
  onClose(cb: () => void): void {
    if (this.isClosed) queueMicrotask(cb);
    else this.closeCallbacks.push(cb);
  }

  /** Makes a unary call; resolves with the response payload or rejects with a `ShimError`. */
  call(service: string, method: string, payload: Uint8Array, opts: CallOptions = {}): Promise<Uint8Array> {
    const { signal, timeoutMs } = opts;
    if (this.isClosed) return Promise.reject(new ShimError("Unavailable", "ttrpc: closed"));
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.nextId > MAX_STREAM_ID) {
      this.close();
      return Promise.reject(new ShimError("Unavailable", "ttrpc: stream ids exhausted"));
    }
    const id = this.nextId;
    this.nextId += 2;
    const metadata = opts.metadata ? Object.entries(opts.metadata).map(([key, value]) => ({ key, value })) : [];
    const timeoutNano = timeoutMs !== undefined && timeoutMs > 0 ? Math.round(timeoutMs * 1e6) : 0;
    const frame = encodeRequestFrame(id, { service, method, payload, timeoutNano, metadata });
    if (frame.length - HEADER_SIZE > MAX_MESSAGE) {
      const msg = `message length ${frame.length - HEADER_SIZE} exceeds maximum message size of ${MAX_MESSAGE}`;
      return Promise.reject(new ShimError("ResourceExhausted", msg));
    }
    return new Promise<Uint8Array>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        this.pending.delete(id);
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const onAbort = (): void => {
        done();
        reject(signal?.reason);
      };
      if (timeoutNano > 0) {
        timer = setTimeout(() => {
          done();
          reject(new ShimError("DeadlineExceeded", `Call "${service}/${method}" exceeded its ${timeoutMs} ms deadline`));
        }, timeoutMs);
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      this.pending.set(id, {
        resolve: (p) => (done(), resolve(p)),
        reject: (e) => (done(), reject(e)),
      });
      this.socket.write(frame);
    });
  }

  /** A typed unary call with generated message classes. */
  async callTyped<Req, Res>(
    service: string,
    method: string,
    req: Pick<MessageType<Req>, "encode">,
    value: Req,
    res: Pick<MessageType<Res>, "decode">,
    opts?: CallOptions,
  ): Promise<Res> {
    const payload = await this.call(service, method, req.encode(value).finish(), opts);
    try {
      return res.decode(payload);
    } catch (err) {
      throw new ShimError("Internal", `Cannot decode response of "${service}/${method}": ${(err as Error).message}`, { cause: err });
    }
  }

  /** Closes the connection; pending calls reject with Unavailable. Idempotent. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.socket.destroy();
    const err = new ShimError("Unavailable", "ttrpc: closed");
    for (const p of [...this.pending.values()]) p.reject(err);
    for (const cb of this.closeCallbacks.splice(0)) cb();
  }

  private onData(chunk: Buffer): void {
    let frames: DecodedFrame[];
    try {
      frames = this.decoder.push(chunk);
    } catch {
      return this.close();
    }
    for (const f of frames) {
      if (f.type !== FrameType.Response) continue;
      const p = this.pending.get(f.streamId);
      if (p === undefined) continue; // late answer to a call that timed out or was aborted
      if (f.kind === "oversized") {
        p.reject(new ShimError("ResourceExhausted", `message length ${f.length} exceed maximum message size of ${MAX_MESSAGE}`));
        continue;
      }
      let res: ttrpc.Response;
      try {
        res = ttrpc.Response.decode(f.data);
      } catch (err) {
        p.reject(new ShimError("Internal", `Cannot decode ttrpc response: ${(err as Error).message}`, { cause: err }));
        continue;
      }
      const st = res.status;
      if (st && st.code) p.reject(fromStatus(st.code, st.message ?? ""));
      else p.resolve(res.payload);
    }
  }
}
