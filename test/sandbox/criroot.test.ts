// Finding containerd's CRI root: Introspection.Plugins on containerd's gRPC socket (a grpc-js stand-in
// here, whose codec is independent of the shim's), the content plugin's exported root, and the fallback.
import * as grpc from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { suite, test, type TestContext } from "node:test";
import { isCode } from "../../src/errdefs.js";
import { Logger, MemorySink } from "../../src/log.js";
import { CriRoot, decodePluginsResponse, encodePluginsRequest, queryContainerdRoot } from "../../src/sandbox/criroot.js";
import { tempDir } from "../helpers/shim.js";
import { contentPlugin, fakeIntrospection, PluginsRequest, PluginsResponse, type FakeAnswer, type FakeIntrospection } from "./fake-introspection.js";

const FILTER = "type==io.containerd.content.v1,id==content";

async function serve(t: TestContext, answer: FakeAnswer): Promise<{ socket: string; fake: FakeIntrospection }> {
  const dir = await tempDir(t, "criroot-");
  const socket = path.join(dir, "containerd.sock");
  const fake = await fakeIntrospection(socket, answer);
  t.after(() => fake.close());
  return { socket, fake };
}

function logger(): { log: Logger; lines: string[] } {
  const sink = new MemorySink();
  return { log: new Logger(sink, "debug"), lines: sink.lines };
}

void suite("the Introspection codec", () => {
  void test("encodes PluginsRequest.filters as containerd's proto does", () => {
    const bytes = encodePluginsRequest([FILTER, "id==x"]);
    assert.deepEqual(PluginsRequest.toObject(PluginsRequest.decode(bytes)), { filters: [FILTER, "id==x"] });
  });

  void test("reads type, id and exports of each plugin, skipping requires, platforms, capabilities and init_err", () => {
    const bytes = PluginsResponse.encode(PluginsResponse.fromObject({
      plugins: [
        { type: "io.containerd.snapshotter.v1", id: "overlayfs", requires: ["a", "b"], platforms: [{ os: "linux", architecture: "amd64" }], exports: { root: "/r/snap" }, capabilities: ["x"], init_err: { code: 2, message: "no" } },
        { type: "io.containerd.content.v1", id: "content", exports: { root: "/r/io.containerd.content.v1.content", other: "v" } },
      ],
    })).finish();
    assert.deepEqual(decodePluginsResponse(bytes), [
      { type: "io.containerd.snapshotter.v1", id: "overlayfs", exports: { root: "/r/snap" } },
      { type: "io.containerd.content.v1", id: "content", exports: { root: "/r/io.containerd.content.v1.content", other: "v" } },
    ]);
    assert.deepEqual(decodePluginsResponse(new Uint8Array()), []);
  });
});

void suite("queryContainerdRoot", () => {
  void test("asks for the content plugin and answers the parent of its root", async (t) => {
    const { socket, fake } = await serve(t, { plugins: [{ type: "io.containerd.metadata.v1", id: "bolt", exports: { path: "/x/meta.db" } }, contentPlugin("/srv/ctd")] });
    assert.equal(await queryContainerdRoot(socket, AbortSignal.timeout(5000)), "/srv/ctd");
    assert.equal(await queryContainerdRoot(`unix://${socket}`, AbortSignal.timeout(5000)), "/srv/ctd");
    assert.deepEqual(fake.requests, [[FILTER], [FILTER]]);
  });

  void test("fails with NotFound when no content plugin with a root is listed, and with the call's status otherwise", async (t) => {
    const { socket, fake } = await serve(t, { plugins: [] });
    await assert.rejects(queryContainerdRoot(socket, AbortSignal.timeout(5000)), (e: Error) => isCode(e, "NotFound") && /exports no root/.test(e.message));
    fake.answer = { error: grpc.status.UNIMPLEMENTED, message: "unknown service containerd.services.introspection.v1.Introspection" };
    await assert.rejects(queryContainerdRoot(socket, AbortSignal.timeout(5000)),
      (e: Error) => isCode(e, "Unimplemented") && e.message === "gRPC status 12: unknown service containerd.services.introspection.v1.Introspection");
  });

  void test("fails with Unavailable when nothing listens, and with the signal's reason when it aborts", async (t) => {
    const dir = await tempDir(t, "criroot-");
    await assert.rejects(queryContainerdRoot(path.join(dir, "none.sock"), AbortSignal.timeout(5000)),
      (e: Error) => isCode(e, "Unavailable") && /Cannot reach containerd at ".*none\.sock": ENOENT/.test(e.message));
    const { socket } = await serve(t, "hang");
    await assert.rejects(queryContainerdRoot(socket, AbortSignal.timeout(100)), (e: Error) => e.name === "TimeoutError");
  });
});

void suite("CriRoot", () => {
  void test("costs a shim that serves no CRI sandbox nothing: node:http2 loads only with the first lookup", () => {
    const index = fileURLToPath(new URL("../../src/sandbox/index.js", import.meta.url));
    const script = `await import(${JSON.stringify(index)});
const loaded = () => process.moduleLoadList.some((m) => m === "NativeModule http2");
const before = loaded();
const { CriRoot } = await import(${JSON.stringify(fileURLToPath(new URL("../../src/sandbox/criroot.js", import.meta.url)))});
const { Logger } = await import(${JSON.stringify(fileURLToPath(new URL("../../src/log.js", import.meta.url)))});
await new CriRoot("/nonexistent/containerd.sock", new Logger()).get();
console.log(JSON.stringify([before, loaded()]));`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    assert.deepEqual(JSON.parse(out), [false, true]);
  });

  void test("is <containerd root>/io.containerd.grpc.v1.cri, asked once and then remembered", async (t) => {
    const { socket, fake } = await serve(t, { plugins: [contentPlugin("/srv/ctd")] });
    const root = new CriRoot(socket, logger().log);
    assert.equal(await root.get(), "/srv/ctd/io.containerd.grpc.v1.cri");
    assert.equal(await root.get(), "/srv/ctd/io.containerd.grpc.v1.cri");
    assert.equal(fake.requests.length, 1);
  });

  void test("assumes /var/lib/containerd, with a warning, when containerd cannot tell, and asks again next time", async (t) => {
    const { socket, fake } = await serve(t, { error: grpc.status.UNAVAILABLE, message: "starting" });
    const { log, lines } = logger();
    const root = new CriRoot(socket, log);
    assert.equal(await root.get(), "/var/lib/containerd/io.containerd.grpc.v1.cri");
    assert.match(lines.join(""), /level=warn msg="cannot ask containerd for its root, assuming the default".*gRPC status 14: starting/);
    fake.answer = { plugins: [contentPlugin("/srv/later")] };
    assert.equal(await root.get(), "/srv/later/io.containerd.grpc.v1.cri");
    assert.equal(await new CriRoot("", log).get(), "/var/lib/containerd/io.containerd.grpc.v1.cri");
  });

  void test("gives up after its timeout on a containerd that does not answer", async (t) => {
    const { socket } = await serve(t, "hang");
    const t0 = performance.now();
    assert.equal(await new CriRoot(socket, logger().log, 200).get(), "/var/lib/containerd/io.containerd.grpc.v1.cri");
    assert.ok(performance.now() - t0 < 3000);
  });

  void test("rejects with the caller's abort instead of assuming the default", async (t) => {
    const { socket } = await serve(t, "hang");
    const ac = new AbortController();
    const p = new CriRoot(socket, logger().log).get(ac.signal);
    ac.abort(new Error("call cancelled"));
    await assert.rejects(p, /call cancelled/);
  });
});
