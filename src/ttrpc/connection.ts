/**
 * One accepted ttrpc connection on the server side. Requests are dispatched concurrently (a blocking
 * handler never holds up another call); writes are whole frames, so they never interleave. Nothing a
 * peer sends can throw out of here: bad input is answered with a status or closes this connection.
 */
import type { Socket } from "node:net";
import { ShimError } from "../errdefs.js";
import { ttrpc } from "../gen/ttrpc.js";
import type { Logger } from "../log.js";
import { encodeOkResponseFrame, encodeStatusResponseFrame, metadataMap, okResponseSize } from "./envelope.js";
import { FrameDecoder, FrameType, type DecodedFrame } from "./frame.js";
import type { CallContext, Method, ServiceRegistry } from "./service.js";
import { grpcCode, toStatus } from "./status.js";

/** setTimeout's upper bound; longer deadlines are treated as none. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Call {
  /** Made on the first read of ctx.signal: most calls (State, Pids) never look at it. */
  controller: AbortController | undefined;
  /** Why the call was aborted (deadline, connection closed), kept for a signal asked for later. */
  aborted: ShimError | undefined;
  readonly service: string;
  readonly method: string;
  /** Date.now() when the request arrived. */
  readonly since: number;
  timer: NodeJS.Timeout | undefined;
  /** A response went out already (deadline); the handler's late result is dropped. */
  answered: boolean;
  /** afterReply callbacks; undefined once the answer was written (or never will be). */
  replied: (() => void)[] | undefined;
}

/** A call whose handler is still running, as the daemon's state dump shows it. */
export interface CallSnapshot {
  stream: number;
  service: string;
  method: string;
  /** How long the handler has been running. */
  ageMs: number;
  /** The deadline passed and DeadlineExceeded was answered; the handler has not returned yet. */
  answered?: true;
}

/** What a connection needs from its server. */
export interface ConnectionOptions {
  registry: ServiceRegistry;
  log: Logger;
  maxMessage: number;
  onClose: (conn: ServerConnection) => void;
}

/** Server side of one connection. Created by `Server`; owns its socket. */
export class ServerConnection {
  private readonly decoder: FrameDecoder;
  private readonly calls = new Map<number, Call>();
  private lastStreamId = 0;
  private closed = false;
  private draining = false;
  /** The socket is corked until the end of this tick: answers ready together go out in one writev. */
  private corked = false;

  constructor(
    private readonly socket: Socket,
    private readonly opts: ConnectionOptions,
  ) {
    this.decoder = new FrameDecoder({ maxData: opts.maxMessage });
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (err) => {
      opts.log.debug("ttrpc connection error", { error: err });
      this.close();
    });
    // Mirrors the Go server: EOF from the client ends the connection and cancels its calls.
    socket.on("end", () => this.close());
    socket.on("close", () => this.close());
  }

  /** Calls whose handlers are still running. */
  get inFlight(): number {
    return this.calls.size;
  }

  /** The calls whose handlers are still running, oldest first. */
  callsSnapshot(now: number = Date.now()): CallSnapshot[] {
    return [...this.calls].map(([stream, c]) => ({
      stream,
      service: c.service,
      method: c.method,
      ageMs: now - c.since,
      ...(c.answered ? { answered: true as const } : {}),
    }));
  }

  /** Graceful close: finish running calls, then end the connection. New requests are still served. */
  drain(): void {
    this.draining = true;
    this.closeIfIdle();
  }

  /** Closes now and aborts every running handler's signal (reason: Canceled). Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const reason = new ShimError("Canceled", "Connection closed");
    for (const call of this.calls.values()) {
      clearTimeout(call.timer);
      abortCall(call, reason);
      flushReplied(call);
    }
    this.socket.destroy();
    this.opts.onClose(this);
  }

  private onData(chunk: Buffer): void {
    let frames: DecodedFrame[];
    try {
      frames = this.decoder.push(chunk);
      for (const f of frames) {
        if (this.closed) return;
        this.onFrame(f);
      }
    } catch (err) {
      this.opts.log.error("ttrpc connection failed", { error: err });
      this.close();
    }
  }

  private onFrame(f: DecodedFrame): void {
    if (f.kind === "oversized") {
      const msg = `message length ${f.length} exceed maximum message size of ${this.opts.maxMessage}`;
      return this.sendStatus(f.streamId, "ResourceExhausted", msg);
    }
    // Checks mirror containerd/ttrpc serverConn.run.
    if (f.streamId % 2 !== 1) {
      return this.sendStatus(f.streamId, "InvalidArgument", "StreamID must be odd for client initiated streams");
    }
    if (f.type === FrameType.Data) {
      // Streams are not supported: only a live unary call can own this id, and it takes no data.
      if (this.calls.has(f.streamId)) this.opts.log.debug("ttrpc data frame on unary call ignored", { stream: f.streamId });
      else this.sendStatus(f.streamId, "InvalidArgument", "StreamID is no longer active");
      return;
    }
    if (f.type !== FrameType.Request) return; // unknown types are ignored for forward compatibility
    if (f.streamId <= this.lastStreamId) {
      return this.sendStatus(f.streamId, "InvalidArgument", "StreamID cannot be re-used and must increment");
    }
    this.lastStreamId = f.streamId;
    let req: ttrpc.Request;
    try {
      req = ttrpc.Request.decode(f.data);
    } catch (err) {
      return this.sendStatus(f.streamId, "InvalidArgument", `unmarshal request error: ${(err as Error).message}`);
    }
    let method: Method;
    try {
      method = this.opts.registry.lookup(req.service, req.method);
    } catch (err) {
      return this.sendError(f.streamId, err);
    }
    void this.run(f.streamId, method, req);
  }

  private async run(id: number, method: Method, req: ttrpc.Request): Promise<void> {
    const call: Call = {
      controller: undefined,
      aborted: undefined,
      service: req.service,
      method: req.method,
      since: Date.now(),
      timer: undefined,
      answered: false,
      replied: [],
    };
    this.calls.set(id, call);
    const timeoutNano = req.timeoutNano;
    if (timeoutNano > 0 && timeoutNano / 1e6 <= MAX_TIMER_MS) {
      call.timer = setTimeout(() => this.onDeadline(id, call), Math.max(1, Math.round(timeoutNano / 1e6)));
    }
    let metadata: ReadonlyMap<string, string[]> | undefined;
    const ctx: CallContext = {
      get signal() {
        return signalOf(call);
      },
      get metadata() {
        return (metadata ??= metadataMap(req.metadata));
      },
      service: req.service,
      method: req.method,
      afterReply: (cb) => {
        if (call.replied === undefined) queueMicrotask(cb);
        else call.replied.push(cb);
      },
    };
    // Only a call that registered afterReply callbacks needs to hear when its answer was written.
    const written = (): (() => void) | undefined => {
      if ((call.replied?.length ?? 0) > 0) return () => flushReplied(call);
      call.replied = undefined;
      return undefined;
    };
    try {
      const res = await method.call(req.payload, ctx);
      if (!call.answered) this.sendOk(id, res, written());
    } catch (err) {
      if (!(err instanceof ShimError) && call.aborted === undefined) {
        this.opts.log.error("ttrpc handler failed", { service: req.service, method: req.method, error: err });
      }
      if (!call.answered) this.sendError(id, err, written());
    } finally {
      clearTimeout(call.timer);
      this.calls.delete(id);
      this.closeIfIdle();
    }
  }

  private onDeadline(id: number, call: Call): void {
    call.answered = true;
    abortCall(call, new ShimError("DeadlineExceeded", "context deadline exceeded"));
    this.sendStatus(id, "DeadlineExceeded", "context deadline exceeded", () => flushReplied(call));
  }

  private sendOk(id: number, payload: Uint8Array, written?: () => void): void {
    const size = okResponseSize(payload.length);
    if (size > this.opts.maxMessage) {
      const msg = `message length ${size} exceeds maximum message size of ${this.opts.maxMessage}`;
      return this.sendStatus(id, "ResourceExhausted", msg, written);
    }
    this.write(encodeOkResponseFrame(id, payload), written);
  }

  private sendError(id: number, err: unknown, written?: () => void): void {
    const st = toStatus(err);
    this.write(encodeStatusResponseFrame(id, st.code, st.message), written);
  }

  private sendStatus(id: number, code: ShimError["code"], message: string, written?: () => void): void {
    this.write(encodeStatusResponseFrame(id, grpcCode(code), message), written);
  }

  /** Writes a whole frame; `written` runs once the kernel has it, or at once if it cannot be written. */
  private write(frame: Buffer, written?: () => void): void {
    if (this.closed || this.socket.destroyed || !this.socket.writable) return written?.();
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    // Backpressure: a peer that does not read its answers stops being read from, bounding our memory.
    if (!this.socket.write(frame, written && (() => written())) && !this.socket.isPaused()) {
      this.socket.pause();
      this.socket.once("drain", () => this.socket.resume());
    }
  }

  private closeIfIdle(): void {
    if (!this.draining || this.closed || this.calls.size > 0 || this.socket.writableEnded) return;
    // end() flushes queued responses before FIN; then the socket is released.
    this.socket.end(() => this.close());
  }
}

/** The call's signal, made on first use; already aborted (with the reason) if the call was. */
function signalOf(call: Call): AbortSignal {
  if (call.controller === undefined) {
    call.controller = new AbortController();
    if (call.aborted !== undefined) call.controller.abort(call.aborted);
  }
  return call.controller.signal;
}

function abortCall(call: Call, reason: ShimError): void {
  if (call.aborted !== undefined) return;
  call.aborted = reason;
  call.controller?.abort(reason);
}

/** Runs a call's afterReply callbacks once; later registrations run at once. */
function flushReplied(call: Call): void {
  const cbs = call.replied;
  call.replied = undefined;
  for (const cb of cbs ?? []) cb();
}
