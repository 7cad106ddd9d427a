// RemotePublisher.snapshot(): the event queue as the daemon's SIGUSR1 dump shows it (docs/debugging.md).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { suite, test } from "node:test";
import { Logger } from "../../../src/log.js";
import { RemotePublisher } from "../../../src/shim/events/publisher.js";
import { waitFor } from "../../helpers/wait.js";

void suite("RemotePublisher.snapshot()", () => {
  void test("shows queued topics in order, their age, and the sender retrying an unreachable containerd", async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), "pubsnap-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const address = path.join(dir, "absent.sock");
    // Nothing listens: the first event is retried (after 60 s) and holds the queue.
    const p = new RemotePublisher({ address: `unix://${address}`, namespace: "ns", log: new Logger(), retryDelayMs: 60_000, timeoutMs: 500 });
    t.after(() => p.close());
    assert.deepEqual(p.snapshot(), { address, pending: 0, topics: [], oldestMs: 0, sending: false, connected: false, closed: false, dropped: 0 });
    for (const topic of ["/tasks/create", "/tasks/start", "/tasks/exit"]) p.publish(topic, "x", new Uint8Array());
    const s = p.snapshot(Date.now() + 2000);
    assert.deepEqual({ ...s, oldestMs: 0 }, {
      address, pending: 3, topics: ["/tasks/create", "/tasks/start", "/tasks/exit"], oldestMs: 0,
      sending: true, connected: false, closed: false, dropped: 0,
    });
    assert.ok(s.oldestMs >= 2000 && s.oldestMs < 5000, `oldest event's age: ${s.oldestMs} ms`);
    p.close();
    await waitFor(() => !p.snapshot().sending, { what: "the sender to stop" });
    assert.deepEqual(p.snapshot(), { address, pending: 0, topics: [], oldestMs: 0, sending: false, connected: false, closed: true, dropped: 3 });
  });

  void test("lists at most 20 topics and counts what was dropped without TTRPC_ADDRESS", () => {
    const none = new RemotePublisher({ address: "", namespace: "ns", log: new Logger() });
    none.publish("/tasks/exit", "x", new Uint8Array());
    assert.equal(none.snapshot().dropped, 1);
    assert.equal(none.snapshot().address, "");
    const p = new RemotePublisher({ address: "/nonexistent/dir/sock", namespace: "ns", log: new Logger(), retryDelayMs: 60_000, timeoutMs: 500 });
    for (let i = 0; i < 25; i++) p.publish(`/t/${i}`, "x", new Uint8Array());
    const s = p.snapshot();
    assert.equal(s.pending, 25);
    assert.equal(s.topics.length, 20);
    assert.equal(s.topics[19], "/t/19");
    p.close();
  });
});
