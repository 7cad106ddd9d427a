import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { suite, test, type TestContext } from "node:test";
import { containerd, google } from "../../../src/gen/task.js";
import { ShimError } from "../../../src/errdefs.js";
import { Logger, MemorySink } from "../../../src/log.js";
import { RemotePublisher, type RemotePublisherOptions } from "../../../src/shim/events/publisher.js";
import { Server, unary } from "../../../src/ttrpc/index.js";
import { waitFor } from "../../helpers/wait.js";

interface Received {
  topic: string;
  namespace: string;
  seconds: number;
  typeUrl: string;
  value: Uint8Array;
  metadata: string[] | undefined;
}

/** containerd's events service, played by our own ttrpc server on a unix socket. */
class FakeEvents {
  readonly received: Received[] = [];
  failNext = 0;
  private server: Server | undefined;

  constructor(readonly socket: string) {}

  async listen(): Promise<void> {
    const server = new Server();
    server.register("containerd.services.events.ttrpc.v1.Events", {
      Forward: unary(containerd.services.events.ttrpc.v1.ForwardRequest, google.protobuf.Empty, (req, ctx) => {
        if (this.failNext > 0) {
          this.failNext--;
          throw new ShimError("Unavailable", "try later");
        }
        const e = req.envelope;
        this.received.push({
          topic: e?.topic ?? "",
          namespace: e?.namespace ?? "",
          seconds: Number(e?.timestamp?.seconds ?? 0),
          typeUrl: e?.event?.typeUrl ?? "",
          value: e?.event?.value ?? new Uint8Array(),
          metadata: ctx.metadata.get("containerd-namespace-ttrpc"),
        });
        return {};
      }),
    });
    const listener = net.createServer();
    await new Promise<void>((resolve, reject) => {
      listener.once("error", reject);
      listener.listen(this.socket, resolve);
    });
    server.serve(listener);
    this.server = server;
  }

  close(): void {
    this.server?.close();
    this.server = undefined;
  }

  topics(): string[] {
    return this.received.map((r) => r.topic);
  }
}

async function setup(t: TestContext, opts: Partial<RemotePublisherOptions> = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), "shim-pub-"));
  const events = new FakeEvents(path.join(dir, "c.sock.ttrpc"));
  const sink = new MemorySink();
  const publisher = new RemotePublisher({
    address: `unix://${events.socket}`,
    namespace: "ns1",
    log: new Logger(sink, "debug"),
    retryDelayMs: 10,
    ...opts,
  });
  t.after(async () => {
    publisher.close();
    events.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { events, publisher, sink };
}

const payload = (i: number): Uint8Array => new Uint8Array([i & 0xff]);

void suite("RemotePublisher", () => {
  void test("forwards envelopes in publish order with namespace, timestamp and metadata", async (t) => {
    const { events, publisher } = await setup(t);
    await events.listen();
    const want: string[] = [];
    for (let i = 0; i < 100; i++) {
      want.push(`/tasks/e${i}`);
      publisher.publish(`/tasks/e${i}`, "containerd.events.TaskExit", payload(i));
    }
    assert.equal(await publisher.drain({ signal: AbortSignal.timeout(10_000) }), true);
    assert.deepEqual(events.topics(), want);
    const first = events.received[0];
    assert.equal(first?.namespace, "ns1");
    assert.equal(first?.typeUrl, "containerd.events.TaskExit");
    assert.deepEqual([...(first?.value ?? [])], [0]);
    assert.deepEqual(first?.metadata, ["ns1"]);
    assert.ok(Math.abs((first?.seconds ?? 0) - Date.now() / 1000) < 60, "timestamp is now");
    assert.equal(publisher.dropped, 0);
  });

  void test("retries until the server appears and keeps later events behind", async (t) => {
    const { events, publisher, sink } = await setup(t, { maxRetries: 50 });
    publisher.publish("/tasks/a", "x.A", payload(1));
    publisher.publish("/tasks/b", "x.B", payload(2));
    await waitFor(() => sink.lines.some((l) => l.includes("forward failed")), { what: "a failed forward" });
    publisher.publish("/tasks/c", "x.C", payload(3));
    await events.listen();
    assert.equal(await publisher.drain({ signal: AbortSignal.timeout(10_000) }), true);
    assert.deepEqual(events.topics(), ["/tasks/a", "/tasks/b", "/tasks/c"]);
  });

  void test("holds an event through an outage longer than its retries: unreachable attempts do not count", async (t) => {
    const { events, publisher, sink } = await setup(t, { maxRetries: 1, retryDelayMs: 20 });
    publisher.publish("/tasks/exit", "x.A", payload(1));
    publisher.publish("/tasks/delete", "x.B", payload(2));
    await waitFor(() => sink.lines.filter((l) => l.includes("forward failed")).length >= 6, { what: "six failed forwards" });
    assert.equal(publisher.dropped, 0, "nothing dropped while containerd is unreachable");
    await events.listen();
    assert.equal(await publisher.drain({ signal: AbortSignal.timeout(10_000) }), true);
    assert.deepEqual(events.topics(), ["/tasks/exit", "/tasks/delete"]);
    assert.equal(publisher.dropped, 0);
  });

  void test("does not let later events overtake one that the server refused", async (t) => {
    const { events, publisher } = await setup(t);
    await events.listen();
    events.failNext = 3;
    for (const topic of ["/tasks/1", "/tasks/2", "/tasks/3"]) publisher.publish(topic, "x.Y", payload(0));
    assert.equal(await publisher.drain({ signal: AbortSignal.timeout(10_000) }), true);
    assert.deepEqual(events.topics(), ["/tasks/1", "/tasks/2", "/tasks/3"]);
  });

  void test("drops an event after its retries and goes on with the next", async (t) => {
    const { events, publisher } = await setup(t, { maxRetries: 2 });
    await events.listen();
    events.failNext = 3; // first attempt + 2 retries of /tasks/1
    publisher.publish("/tasks/1", "x.Y", payload(0));
    publisher.publish("/tasks/2", "x.Y", payload(0));
    assert.equal(await publisher.drain({ signal: AbortSignal.timeout(10_000) }), true);
    assert.deepEqual(events.topics(), ["/tasks/2"]);
    assert.equal(publisher.dropped, 1);
  });

  void test("reconnects after the server restarts", async (t) => {
    const { events, publisher } = await setup(t);
    await events.listen();
    publisher.publish("/tasks/1", "x.Y", payload(0));
    assert.equal(await publisher.drain({ signal: AbortSignal.timeout(10_000) }), true);
    events.close();
    await events.listen();
    publisher.publish("/tasks/2", "x.Y", payload(0));
    assert.equal(await publisher.drain({ signal: AbortSignal.timeout(10_000) }), true);
    assert.deepEqual(events.topics(), ["/tasks/1", "/tasks/2"]);
  });

  void test("bounds the queue by dropping the oldest waiting events", async (t) => {
    const { events, publisher, sink } = await setup(t, { maxQueue: 3, retryDelayMs: 60_000 });
    publisher.publish("/tasks/0", "x.Y", payload(0)); // in flight: retried, never dropped for space
    await waitFor(() => sink.lines.some((l) => l.includes("forward failed")), { what: "a failed forward" });
    for (let i = 1; i <= 6; i++) publisher.publish(`/tasks/${i}`, "x.Y", payload(i));
    assert.equal(publisher.pending, 3);
    assert.equal(publisher.dropped, 4);
    assert.ok(sink.lines.some((l) => l.includes("event dropped") && l.includes("queue full")));
    assert.equal(await publisher.drain({ signal: AbortSignal.timeout(50) }), false);
    publisher.close();
    assert.equal(publisher.pending, 0);
    assert.equal(events.received.length, 0);
  });

  void test("drops events when there is no TTRPC_ADDRESS", () => {
    const publisher = new RemotePublisher({ address: "", namespace: "n", log: new Logger() });
    publisher.publish("/tasks/1", "x.Y", payload(0));
    assert.equal(publisher.dropped, 1);
    assert.equal(publisher.pending, 0);
  });
});
