/**
 * Where containerd's CRI plugin keeps its files: `<containerd root>/io.containerd.grpc.v1.cri` on 1.7
 * (the plugin's own root) and 2.x (kept "for backward compatibility" by `plugins/cri/runtime`). The shim
 * is not told containerd's root, so it asks containerd: the Introspection service's `Plugins` call on
 * the gRPC socket (the shim's `-address`) lists the content plugin `io.containerd.content.v1.content`,
 * whose export `root` is `<containerd root>/io.containerd.content.v1.content` on 1.7.24 and 2.1.9. When
 * that fails, the packaged default `/var/lib/containerd` is assumed.
 *
 * The call is plain gRPC over HTTP/2 with two messages encoded by hand, so a sandbox shim loads no gRPC
 * library; node:http2 itself (about 2.6 MiB of RSS) is loaded only when a CRI sandbox is created.
 */
import type { IncomingHttpHeaders } from "node:http2";
import net from "node:net";
import path from "node:path";
import protobuf from "protobufjs/minimal.js";
import { ShimError, type Code } from "../errdefs.js";
import type { Logger } from "../log.js";

/** The CRI plugin's directory name under containerd's root. */
export const CRI_PLUGIN_DIR = "io.containerd.grpc.v1.cri";
/** containerd's default root (its packaged config and built-in default). */
export const DEFAULT_CONTAINERD_ROOT = "/var/lib/containerd";
/** How long the Introspection call may take before the default is assumed. */
export const LOOKUP_TIMEOUT_MS = 5000;

const PLUGINS_METHOD = "/containerd.services.introspection.v1.Introspection/Plugins";
const CONTENT_TYPE = "io.containerd.content.v1";
const CONTENT_ID = "content";
/** A reply larger than this is refused (the filtered answer is one plugin, well under 1 KiB). */
const MAX_REPLY = 4 << 20;

/** One entry of `PluginsResponse.plugins`: the fields the shim reads. */
export interface PluginInfo {
  type: string;
  id: string;
  exports: Record<string, string>;
}

/** `PluginsRequest { repeated string filters = 1; }` */
export function encodePluginsRequest(filters: readonly string[]): Uint8Array {
  const w = protobuf.Writer.create();
  for (const f of filters) w.uint32((1 << 3) | 2).string(f);
  return w.finish();
}

function decodeExportsEntry(r: protobuf.Reader, end: number): [string, string] {
  let key = "";
  let value = "";
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag >>> 3 === 1) key = r.string();
    else if (tag >>> 3 === 2) value = r.string();
    else r.skipType(tag & 7);
  }
  return [key, value];
}

function decodePlugin(r: protobuf.Reader, end: number): PluginInfo {
  const p: PluginInfo = { type: "", id: "", exports: {} };
  while (r.pos < end) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if (field === 1) p.type = r.string();
    else if (field === 2) p.id = r.string();
    else if (field === 5 && (tag & 7) === 2) {
      const len = r.uint32();
      const [k, v] = decodeExportsEntry(r, r.pos + len);
      p.exports[k] = v;
    } else r.skipType(tag & 7);
  }
  return p;
}

/** `PluginsResponse { repeated Plugin plugins = 1; }` (Plugin: type 1, id 2, exports 5; the rest skipped). */
export function decodePluginsResponse(bytes: Uint8Array): PluginInfo[] {
  const r = protobuf.Reader.create(bytes);
  const out: PluginInfo[] = [];
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag >>> 3 === 1 && (tag & 7) === 2) {
      const len = r.uint32();
      out.push(decodePlugin(r, r.pos + len));
    } else r.skipType(tag & 7);
  }
  return out;
}

/** gRPC status numbers the lookup can meet, as the shim's codes. */
const GRPC_CODES: Record<number, Code> = { 1: "Canceled", 4: "DeadlineExceeded", 5: "NotFound", 12: "Unimplemented", 14: "Unavailable" };

/** A gRPC length-prefixed message: flag 0 (uncompressed), 4-byte big-endian length, bytes. */
function frame(msg: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + msg.length);
  out.writeUInt32BE(msg.length, 1);
  out.set(msg, 5);
  return out;
}

function unframe(body: Buffer): Uint8Array {
  if (body.length < 5 || body[0] !== 0) throw new ShimError("Internal", `Cannot read the gRPC reply: ${body.length < 5 ? "short message" : "compressed message"}`);
  const len = body.readUInt32BE(1);
  if (body.length < 5 + len) throw new ShimError("Internal", "Cannot read the gRPC reply: truncated message");
  return body.subarray(5, 5 + len);
}

function statusError(status: string | undefined, message: string | undefined): ShimError | undefined {
  if (status === undefined) return new ShimError("Internal", "The gRPC reply has no grpc-status");
  const n = Number(status);
  if (n === 0) return undefined;
  const text = message === undefined ? "" : decodeURIComponent(message);
  return new ShimError(GRPC_CODES[n] ?? "Unknown", `gRPC status ${n}: ${text}`);
}

/** The errno code (else the message) at the bottom of `err`'s cause chain. */
function rootCause(err: Error): string {
  let e: unknown = err;
  for (let i = 0; i < 8 && e instanceof Error && e.cause instanceof Error; i++) e = e.cause;
  const last = e as NodeJS.ErrnoException;
  return last.code ?? last.message;
}

/**
 * One unary gRPC call on the unix socket `socket`: `method` is `/<service>/<Method>`. Rejects with a
 * ShimError (Unavailable when the socket cannot be reached, the call's status otherwise) or the
 * signal's reason.
 */
export async function grpcUnary(socket: string, method: string, request: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
  signal.throwIfAborted();
  const http2 = await import("node:http2");
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const file = socket.replace(/^unix:\/\//, "");
    const session = http2.connect("http://localhost", { createConnection: () => net.connect(file) });
    const chunks: Buffer[] = [];
    let size = 0;
    let headers: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    let settled = false;
    const finish = (err: unknown, value?: Uint8Array): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      session.destroy();
      if (err !== undefined) reject(err);
      else resolve(value ?? new Uint8Array());
    };
    const onAbort = (): void => finish(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    // A failed connect shows up on the stream (ERR_HTTP2_STREAM_CANCEL caused by the socket's error) or the session.
    const unreachable = (err: Error): void => finish(new ShimError("Unavailable", `Cannot reach containerd at "${socket}": ${rootCause(err)}`, { cause: err }));
    session.on("error", unreachable);
    const req = session.request({ ":method": "POST", ":path": method, "content-type": "application/grpc", te: "trailers" });
    req.on("error", unreachable);
    req.on("response", (h) => (headers = h));
    req.on("trailers", (t) => (trailers = t));
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_REPLY) finish(new ShimError("ResourceExhausted", `gRPC reply of ${method} exceeds ${MAX_REPLY} bytes`));
      else chunks.push(c);
    });
    req.on("end", () => {
      // A "trailers-only" reply carries the status in the headers.
      const all = { ...headers, ...trailers };
      const err = statusError(all["grpc-status"] as string | undefined, all["grpc-message"] as string | undefined);
      if (err !== undefined) return finish(err);
      try {
        finish(undefined, unframe(Buffer.concat(chunks)));
      } catch (e) {
        finish(e);
      }
    });
    req.end(frame(request));
  });
}

/** containerd's root as its content plugin reports it, via Introspection on `address`. */
export async function queryContainerdRoot(address: string, signal: AbortSignal): Promise<string> {
  const filter = `type==${CONTENT_TYPE},id==${CONTENT_ID}`;
  const reply = await grpcUnary(address, PLUGINS_METHOD, encodePluginsRequest([filter]), signal);
  const content = decodePluginsResponse(reply).find((p) => p.type === CONTENT_TYPE && p.id === CONTENT_ID);
  const root = content?.exports["root"] ?? "";
  if (!path.isAbsolute(root)) {
    throw new ShimError("NotFound", `containerd at "${address}" exports no root for ${CONTENT_TYPE}.${CONTENT_ID}`);
  }
  return path.dirname(root);
}

/** Finds, and remembers once found, the CRI plugin's root directory of one containerd. */
export class CriRoot {
  private known: string | undefined;

  /** `address`: containerd's gRPC socket path (the shim's `-address`); "" skips the lookup. */
  constructor(
    private readonly address: string,
    private readonly log: Logger,
    private readonly timeoutMs = LOOKUP_TIMEOUT_MS,
  ) {}

  /**
   * `<containerd root>/io.containerd.grpc.v1.cri`. A failed lookup is logged and gives the default
   * root (and is tried again next time); it never throws except for the caller's own `signal`.
   */
  async get(signal?: AbortSignal): Promise<string> {
    if (this.known !== undefined) return this.known;
    let root = DEFAULT_CONTAINERD_ROOT;
    if (this.address !== "") {
      const timeout = AbortSignal.timeout(this.timeoutMs);
      try {
        root = await queryContainerdRoot(this.address, signal ? AbortSignal.any([signal, timeout]) : timeout);
        this.known = path.join(root, CRI_PLUGIN_DIR);
        return this.known;
      } catch (err) {
        signal?.throwIfAborted();
        this.log.warn("cannot ask containerd for its root, assuming the default", { address: this.address, root, error: err });
      }
    }
    return path.join(root, CRI_PLUGIN_DIR);
  }
}
