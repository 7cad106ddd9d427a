/**
 * ttrpc server: accepts connections on listeners it is given and dispatches unary calls to registered
 * services. Graceful `shutdown()` (stop accepting, drain, close) is distinct from `close()` (now).
 */
import type { Server as NetServer, Socket } from "node:net";
import { ShimError } from "../errdefs.js";
import { Logger } from "../log.js";
import { ServerConnection, type CallSnapshot } from "./connection.js";
import { MAX_MESSAGE } from "./frame.js";
import { ServiceRegistry, type Method } from "./service.js";

/**
 * Decides whether an accepted connection may be served, before anything is read from it (the role of
 * containerd/ttrpc's server handshaker). `false` or a throw closes the connection at once, unanswered.
 */
export type Authorize = (socket: Socket) => boolean;

/** What a Server is built with. */
export interface ServerOptions {
  log?: Logger;
  maxMessage?: number;
  /** Runs on every accepted connection; default: every connection is served. */
  authorize?: Authorize;
}

/** One accepted connection as the daemon's state dump shows it. */
export interface ConnectionSnapshot {
  /** Accept order on this server, from 1. */
  id: number;
  /** How long ago it was accepted. */
  ageMs: number;
  calls: CallSnapshot[];
}

/** The server's listeners, connections and in-flight calls. */
export interface ServerSnapshot {
  listening: boolean;
  connections: ConnectionSnapshot[];
}

/** A ttrpc server. One per shim; create it in the composition root. */
export class Server {
  private readonly log: Logger;
  private readonly maxMessage: number;
  private readonly authorize: Authorize | undefined;
  private readonly registry = new ServiceRegistry();
  private readonly listeners = new Set<NetServer>();
  private readonly connections = new Set<ServerConnection>();
  private readonly accepted = new WeakMap<ServerConnection, { id: number; since: number }>();
  private acceptedCount = 0;
  private stopping = false;
  private idleWaiters: Array<() => void> = [];

  constructor(opts: ServerOptions = {}) {
    this.log = opts.log ?? new Logger();
    this.maxMessage = opts.maxMessage ?? MAX_MESSAGE;
    this.authorize = opts.authorize;
  }

  /** Registers methods under a fully-qualified service name (the same object may go under two names). */
  register(service: string, methods: Record<string, Method>): void {
    this.registry.register(service, methods);
  }

  /** Serves connections from `listener`, which is already listening (on a path or an inherited fd). */
  serve(listener: NetServer): void {
    if (this.stopping) throw new ShimError("FailedPrecondition", "Cannot serve on a server that is shutting down");
    this.listeners.add(listener);
    listener.on("connection", (socket: Socket) => this.accept(socket));
    listener.on("error", (err) => this.log.error("ttrpc listener failed", { error: err }));
  }

  /** Open connections. */
  get activeConnections(): number {
    return this.connections.size;
  }

  /** A plain copy of the connections and the calls running on them, oldest first. */
  snapshot(now: number = Date.now()): ServerSnapshot {
    const connections = [...this.connections].map((conn) => {
      const info = this.accepted.get(conn) ?? { id: 0, since: now };
      return { id: info.id, ageMs: now - info.since, calls: conn.callsSnapshot(now) };
    });
    return { listening: !this.stopping && this.listeners.size > 0, connections };
  }

  /**
   * Stops accepting, lets running calls finish (connections close as they become idle), then
   * resolves. If `signal` aborts first, everything left is closed, handlers are aborted, and the
   * promise rejects with the signal's reason.
   */
  async shutdown(opts: { signal?: AbortSignal } = {}): Promise<void> {
    this.stopListening();
    for (const conn of this.connections) conn.drain();
    if (this.connections.size === 0) return;
    const { signal } = opts;
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        reject(signal?.reason); // before close(), whose last connection closing would resolve
        this.close();
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.idleWaiters.push(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      });
    });
  }

  /** Closes listeners and connections now; running handlers see their signals aborted. */
  close(): void {
    this.stopListening();
    for (const conn of [...this.connections]) conn.close();
  }

  private stopListening(): void {
    this.stopping = true;
    for (const l of this.listeners) l.close();
    this.listeners.clear();
  }

  private accept(socket: Socket): void {
    if (this.stopping || !this.authorized(socket)) {
      socket.destroy();
      return;
    }
    const conn = new ServerConnection(socket, {
      registry: this.registry,
      log: this.log,
      maxMessage: this.maxMessage,
      onClose: (c) => this.onConnectionClosed(c),
    });
    this.connections.add(conn);
    this.accepted.set(conn, { id: ++this.acceptedCount, since: Date.now() });
  }

  /** Runs the hook synchronously in the `connection` event: no data of a refused peer is ever read. */
  private authorized(socket: Socket): boolean {
    if (this.authorize === undefined) return true;
    try {
      return this.authorize(socket);
    } catch (err) {
      this.log.warn("ttrpc connection refused: authorization failed", { error: err });
      return false;
    }
  }

  private onConnectionClosed(conn: ServerConnection): void {
    this.connections.delete(conn);
    if (this.connections.size > 0 || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
