import assert from "node:assert/strict";
import { once } from "node:events";
import { readdirSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { suite, test } from "node:test";
import { ShimError } from "../../src/errdefs.js";
import { ttrpc } from "../../src/gen/ttrpc.js";
import { Client, Server, unary, type CallContext, type Method } from "../../src/ttrpc/index.js";
import { gated, RawConn, startServer, tmpDir, within } from "./harness.js";

const enc = (s: string): Uint8Array => Buffer.from(s);

void suite("Server", () => {
  void test("runs a call while another call on the same connection is blocked", async (t) => {
    const b = gated();
    const { path } = await startServer(t, { Block: b.method });
    const client = await Client.connect(path);
    t.after(() => client.close());
    const blocked = client.call("Test", "Block", enc("slow"));
    await within(b.started, 2000, "blocked call to start");
    assert.deepEqual(await within(client.call("Test", "Echo", enc("fast")), 2000, "echo"), enc("fast"));
    b.release();
    assert.deepEqual(await within(blocked, 2000, "blocked call"), enc("slow"));
  });

  void test("answers DEADLINE_EXCEEDED and aborts the handler when timeout_nano passes", async (t) => {
    const b = gated();
    const { path } = await startServer(t, { Block: b.method });
    const raw = await RawConn.open(t, path);
    raw.request(1, { service: "Test", method: "Block", timeoutNano: 30e6 });
    const ctx = await within(b.started, 2000, "call to start");
    const r = await raw.response();
    assert.equal(r.code, 4);
    assert.equal(ctx.signal.aborted, true);
    assert.equal((ctx.signal.reason as ShimError).code, "DeadlineExceeded");
    await raw.echoOk(3);
  });

  void test("hands repeated metadata keys to the handler", async (t) => {
    let seen: ReadonlyMap<string, string[]> | undefined;
    const { path } = await startServer(t, { Meta: { call: async (_p, ctx) => ((seen = ctx.metadata), new Uint8Array(0)) } });
    const raw = await RawConn.open(t, path);
    const metadata = [
      { key: "containerd-namespace-ttrpc", value: "k8s.io" },
      { key: "traceparent", value: "00-a" },
      { key: "traceparent", value: "00-b" },
    ];
    raw.request(1, { service: "Test", method: "Meta", metadata });
    assert.equal((await raw.response()).code, 0);
    assert.deepEqual(seen?.get("containerd-namespace-ttrpc"), ["k8s.io"]);
    assert.deepEqual(seen?.get("traceparent"), ["00-a", "00-b"]);
  });

  void test("answers UNIMPLEMENTED for an unknown service or method", async (t) => {
    const { path } = await startServer(t);
    const client = await Client.connect(path);
    t.after(() => client.close());
    await assert.rejects(client.call("Nope", "Echo", enc("")), { code: "Unimplemented", message: "service Nope" });
    await assert.rejects(client.call("Test", "Nope", enc("")), { code: "Unimplemented", message: "method Nope" });
  });

  void test("maps handler errors to status codes", async (t) => {
    const { path } = await startServer(t, {
      NotFound: { call: () => Promise.reject(new ShimError("NotFound", "container not created: not found")) },
      Exists: { call: () => Promise.reject(new ShimError("AlreadyExists", "id c1: already exists")) },
      Plain: { call: () => Promise.reject(new TypeError("boom")) },
      Throws: {
        call: () => {
          throw new ShimError("FailedPrecondition", "sync throw");
        },
      },
    });
    const client = await Client.connect(path);
    t.after(() => client.close());
    await assert.rejects(client.call("Test", "NotFound", enc("")), { code: "NotFound", message: "container not created: not found" });
    await assert.rejects(client.call("Test", "Exists", enc("")), { code: "AlreadyExists" });
    await assert.rejects(client.call("Test", "Plain", enc("")), { code: "Unknown", message: "boom" });
    await assert.rejects(client.call("Test", "Throws", enc("")), { code: "FailedPrecondition", message: "sync throw" });
  });

  void test("answers INTERNAL when the payload does not decode", async (t) => {
    const kv = unary(ttrpc.KeyValue, ttrpc.KeyValue, (req) => ({ key: req.value, value: req.key }));
    const { path } = await startServer(t, { Swap: kv });
    const client = await Client.connect(path);
    t.after(() => client.close());
    const res = await client.callTyped("Test", "Swap", ttrpc.KeyValue, { key: "k", value: "v" }, ttrpc.KeyValue);
    assert.deepEqual([res.key, res.value], ["v", "k"]);
    await assert.rejects(client.call("Test", "Swap", Uint8Array.of(0x0a, 0x05, 0x61)), (err: ShimError) => {
      assert.equal(err.code, "Internal");
      assert.match(err.message, /^ttrpc: error unmarshalling payload/);
      return true;
    });
  });

  void test("answers RESOURCE_EXHAUSTED for an oversized response and keeps the connection", async (t) => {
    const { path } = await startServer(t, { Big: { call: async () => new Uint8Array(2048) } }, { maxMessage: 1024 });
    const client = await Client.connect(path);
    t.after(() => client.close());
    await assert.rejects(client.call("Test", "Big", enc("")), { code: "ResourceExhausted" });
    assert.deepEqual(await client.call("Test", "Echo", enc("x")), enc("x"));
  });

  void test("aborts a handler's signal when its connection closes", async (t) => {
    const b = gated();
    const { server, path } = await startServer(t, { Block: b.method });
    const client = await Client.connect(path);
    const call = client.call("Test", "Block", enc(""));
    const ctx = await within(b.started, 2000, "call to start");
    assert.equal(server.activeConnections, 1);
    client.close();
    await assert.rejects(call, { code: "Unavailable" });
    if (!ctx.signal.aborted) await within(once(ctx.signal, "abort"), 2000, "handler abort");
    assert.equal((ctx.signal.reason as ShimError).code, "Canceled");
  });

  void test("shutdown() drains running calls, then closes", async (t) => {
    const b = gated();
    const { server, path } = await startServer(t, { Block: b.method });
    const client = await Client.connect(path);
    t.after(() => client.close());
    const closed = new Promise<void>((r) => client.onClose(r));
    const call = client.call("Test", "Block", enc("drained"));
    await within(b.started, 2000, "call to start");
    let done = false;
    const shutdown = server.shutdown().then(() => (done = true));
    // The connection is still served while it drains.
    assert.deepEqual(await within(client.call("Test", "Echo", enc("x")), 2000, "echo while draining"), enc("x"));
    assert.equal(done, false);
    await assert.rejects(Client.connect(path), { code: "Unavailable" });
    b.release();
    assert.deepEqual(await within(call, 2000, "drained call"), enc("drained"));
    await within(shutdown, 2000, "shutdown");
    await within(closed, 2000, "client close");
    assert.equal(server.activeConnections, 0);
  });

  void test("shutdown() closes everything when its signal fires first", async (t) => {
    const b = gated();
    const { server, path } = await startServer(t, { Block: b.method });
    const client = await Client.connect(path);
    t.after(() => client.close());
    const call = client.call("Test", "Block", enc(""));
    const ctx = await within(b.started, 2000, "call to start");
    await assert.rejects(within(server.shutdown({ signal: AbortSignal.timeout(30) }), 2000, "shutdown"), { name: "TimeoutError" });
    assert.equal(ctx.signal.aborted, true);
    await assert.rejects(call, { code: "Unavailable" });
  });

  void test("releases every fd once its connections and listener are closed", async (t) => {
    const path = join(await tmpDir(t), "fd.sock");
    const fds = (): number => readdirSync("/proc/self/fd").length;
    const before = fds();
    const server = new Server();
    server.register("Test", { Echo: { call: async (p) => p } });
    const listener = createServer();
    await new Promise<void>((resolve) => listener.listen(path, resolve));
    server.serve(listener);
    const clients = await Promise.all(Array.from({ length: 10 }, () => Client.connect(path)));
    await Promise.all(clients.map((c) => c.call("Test", "Echo", enc("x"))));
    for (const c of clients.slice(0, 5)) c.close();
    const closed = Promise.all(clients.slice(5).map((c) => new Promise<void>((r) => c.onClose(r))));
    const listenerClosed = once(listener, "close");
    await within(server.shutdown(), 2000, "shutdown");
    await within(Promise.all([closed, listenerClosed]), 2000, "clients and listener to close");
    assert.equal(server.activeConnections, 0);
    // Handles close on a later loop turn; wait for the count with a deadline rather than a sleep.
    const deadline = Date.now() + 2000;
    while (fds() !== before && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    assert.equal(fds(), before);
  });
});
