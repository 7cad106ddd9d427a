// Folder src/shim/events:
// Owns: events to containerd (ttrpc Events/Forward, or the publish binary).
// Must not import: cgroups, runc, sandbox, shim/config, shim/daemon, shim/diagnostics, shim/entry,
//   shim/invocation, shim/manager, shim/packaging, shim/socket, shim/spare, stdio, sys.

/**
 * Event publishing to containerd (shared/protocol.md §5.2, peers.md §2.16): `Events/Forward` over ttrpc
 * on TTRPC_ADDRESS. One ordered queue and one sender: an event being retried holds back the ones behind
 * it, so order holds even under failure (the Go publisher lets re-queued events be overtaken).
 */
import { setTimeout as delay } from "node:timers/promises";
import { containerd } from "../../gen/task.js";
import type { Logger } from "../../log.js";
import type { Publisher } from "../../task/index.js";
import { Client } from "../../ttrpc/index.js";

const EVENTS_SERVICE = "containerd.services.events.ttrpc.v1.Events";
const NAMESPACE_METADATA = "containerd-namespace-ttrpc";

/** Options of {@link RemotePublisher}; the defaults mirror the Go shim library. */
export interface RemotePublisherOptions {
  /** containerd's ttrpc socket (TTRPC_ADDRESS), with or without `unix://`. Empty: events are dropped. */
  address: string;
  namespace: string;
  log: Logger;
  /** Queue bound; when full, the oldest waiting event is dropped. Default 2048. */
  maxQueue?: number;
  /** Deadline of one Forward call. Default 5000 ms. */
  timeoutMs?: number;
  /**
   * Retries after the first failed attempt before an event is dropped. Default 5. Attempts that could not
   * reach containerd at all (it is down or restarting) do not count: an exit is held, in order, until a
   * containerd is back to take it, so an outage of any length loses no event (the queue bound still holds).
   */
  maxRetries?: number;
  /** Delay before retry n is n × this. Default 1000 ms. */
  retryDelayMs?: number;
}

/** containerd's socket could not be reached (containerd down or restarting): not counted as a retry. */
class Unreachable extends Error {}

interface Item {
  topic: string;
  payload: Uint8Array;
  /** Date.now() when it was queued. */
  queuedAt: number;
}

/** How many of the queued events' topics a snapshot lists. */
const SNAPSHOT_TOPICS = 20;

/** The publisher's queue as the daemon's state dump shows it. */
export interface PublisherSnapshot {
  /** containerd's ttrpc socket the events go to ("" drops them). */
  address: string;
  /** Events queued, the one being sent included. */
  pending: number;
  /** The first queued topics, oldest first (at most 20). */
  topics: string[];
  /** Age of the oldest queued event; 0 when none. */
  oldestMs: number;
  /** A Forward (or its retry delay) is in progress. */
  sending: boolean;
  connected: boolean;
  closed: boolean;
  dropped: number;
}

/** The daemon's Publisher. `publish` never throws and never blocks. */
export class RemotePublisher implements Publisher {
  private readonly queue: Item[] = [];
  private readonly path: string;
  private readonly maxQueue: number;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly retryDelayMs: number;
  private readonly stopper = new AbortController();
  private readonly idleWaiters: Array<() => void> = [];
  private client: Client | undefined;
  private sending = false;
  private closed = false;
  /** Events dropped so far (queue overflow, retries exhausted, closed, no address). */
  dropped = 0;

  constructor(private readonly opts: RemotePublisherOptions) {
    this.path = opts.address.startsWith("unix://") ? opts.address.slice("unix://".length) : opts.address;
    this.maxQueue = Math.max(1, opts.maxQueue ?? 2048);
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.maxRetries = opts.maxRetries ?? 5;
    this.retryDelayMs = opts.retryDelayMs ?? 1000;
  }

  /** Events queued or in flight. */
  get pending(): number {
    return this.queue.length;
  }

  /** A plain copy of the queue's state, for the daemon's state dump. */
  snapshot(now: number = Date.now()): PublisherSnapshot {
    const first = this.queue[0];
    return {
      address: this.path,
      pending: this.queue.length,
      topics: this.queue.slice(0, SNAPSHOT_TOPICS).map((i) => i.topic),
      oldestMs: first === undefined ? 0 : now - first.queuedAt,
      sending: this.sending,
      connected: this.client !== undefined && !this.client.closed,
      closed: this.closed,
      dropped: this.dropped,
    };
  }

  /** Queues an event; the envelope timestamp is taken now. */
  publish(topic: string, typeUrl: string, value: Uint8Array): void {
    if (this.closed || this.path === "") {
      this.drop(topic, this.closed ? "publisher closed" : "no TTRPC_ADDRESS");
      return;
    }
    let payload: Uint8Array;
    try {
      const ms = Date.now();
      const timestamp = { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
      const envelope = { timestamp, namespace: this.opts.namespace, topic, event: { typeUrl: typeUrl, value } };
      payload = containerd.services.events.ttrpc.v1.ForwardRequest.encode({ envelope }).finish();
    } catch (err) {
      this.drop(topic, `cannot encode: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    if (this.queue.length >= this.maxQueue) {
      // queue[0] may be in flight; drop the oldest event that is only waiting.
      const victim = this.sending && this.queue.length > 1 ? 1 : this.sending ? -1 : 0;
      if (victim < 0) return this.drop(topic, "queue full");
      const [old] = this.queue.splice(victim, 1);
      this.drop(old?.topic ?? "", "queue full");
    }
    this.queue.push({ topic, payload, queuedAt: Date.now() });
    if (!this.sending) void this.run();
  }

  /**
   * Resolves true once every queued event was delivered or dropped, false if `signal` aborts first (the
   * rest is then left to `close()`).
   */
  drain(opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    if (this.queue.length === 0) return Promise.resolve(true);
    const { signal } = opts;
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onAbort = (): void => resolve(false);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.idleWaiters.push(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve(true);
      });
    });
  }

  /** Stops sending, drops what is queued and closes the connection. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopper.abort(new Error("Publisher closed"));
    if (this.queue.length > 0) this.opts.log.warn("dropping queued events at close", { count: this.queue.length });
    this.dropped += this.queue.length;
    this.queue.length = 0;
    this.client?.close();
    this.client = undefined;
    this.notifyIdle();
  }

  private drop(topic: string, reason: string): void {
    this.dropped++;
    this.opts.log.warn("event dropped", { topic, reason, dropped: this.dropped });
  }

  private notifyIdle(): void {
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private async run(): Promise<void> {
    this.sending = true;
    try {
      while (!this.closed && this.queue.length > 0) {
        const item = this.queue[0] as Item;
        const err = await this.deliver(item);
        if (this.queue[0] === item) this.queue.shift();
        if (err !== undefined && !this.closed) this.drop(item.topic, `forward failed: ${err}`);
      }
    } finally {
      this.sending = false;
      if (this.queue.length === 0) this.notifyIdle();
    }
  }

  /** Sends `item` with retries; resolves undefined when delivered, else the last error text. */
  private async deliver(item: Item): Promise<string | undefined> {
    let last = "";
    for (let attempt = 0, tries = 0; attempt <= this.maxRetries; attempt++, tries++) {
      if (tries > 0) {
        try {
          await delay(Math.min(tries, Math.max(this.maxRetries, 1)) * this.retryDelayMs, undefined, { signal: this.stopper.signal });
        } catch {
          return "publisher closed";
        }
      }
      if (this.closed) return "publisher closed";
      try {
        await this.send(item);
        return undefined;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
        this.opts.log.debug("forward failed", { topic: item.topic, attempt, error: last });
        if (err instanceof Unreachable) attempt--;
      }
    }
    return last;
  }

  /** One Forward; if the cached connection turned out closed, reconnects once and sends again. */
  private async send(item: Item): Promise<void> {
    for (let fresh = false; ; fresh = true) {
      const client = await this.connect().catch((err: unknown) => {
        throw new Unreachable(`Cannot reach containerd: ${err instanceof Error ? err.message : String(err)}`);
      });
      try {
        await client.call(EVENTS_SERVICE, "Forward", item.payload, {
          timeoutMs: this.timeoutMs,
          metadata: { [NAMESPACE_METADATA]: this.opts.namespace },
          signal: this.stopper.signal,
        });
        return;
      } catch (err) {
        if (!client.closed || fresh) throw err;
      }
    }
  }

  private async connect(): Promise<Client> {
    if (this.client && !this.client.closed) return this.client;
    this.client = undefined;
    const signal = AbortSignal.any([this.stopper.signal, AbortSignal.timeout(this.timeoutMs)]);
    const client = await Client.connect(this.path, { signal });
    if (this.closed) {
      client.close();
      throw new Error("Publisher closed");
    }
    this.client = client;
    return client;
  }
}
