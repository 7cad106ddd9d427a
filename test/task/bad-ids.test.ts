// Every TaskService method with an unknown id answers NotFound, with a malformed id InvalidArgument
// (before anything touches the filesystem); Create refuses bundles outside its BundleScope. The table is
// driven by `methods()` itself, so a method added later is covered (its request must carry the id in
// field 1, as every containerd.task.v2 request does).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { suite, test, type TestContext } from "node:test";
import { BundleScope } from "../../src/bundle-scope.js";
import { codeOf } from "../../src/errdefs.js";
import { containerd } from "../../src/gen/task.js";
import { Logger } from "../../src/log.js";
import { TaskService } from "../../src/task/index.js";
import type { CallContext, Method } from "../../src/ttrpc/index.js";
import { makeBundle, useService } from "./harness.js";

const T = containerd.task.v2;

/** Methods whose requests carry `exec_id` in field 2. */
const EXEC_METHODS = ["Start", "State", "Delete", "Kill", "Wait", "Exec", "ResizePty", "CloseIO"];

/** Methods that do not answer NotFound for an unknown id, and why. */
const NOT_NOTFOUND: Record<string, string> = {
  Create: "creates the id",
  Connect: "containerd connects with ids the shim holds no container for (a sandbox id); task_pid 0",
  Shutdown: "containerd sends it after Delete, for an id that is gone; it only asks the shim to exit when empty",
};

/** A protobuf message with string fields 1 (id) and, if given, 2 (exec id). */
function idRequest(id: string, execId?: string): Uint8Array {
  const field = (n: number, s: string) => {
    const b = Buffer.from(s, "utf8");
    if (b.length > 127) return Buffer.concat([Buffer.from([(n << 3) | 2, (b.length & 0x7f) | 0x80, b.length >> 7]), b]);
    return Buffer.concat([Buffer.from([(n << 3) | 2, b.length]), b]);
  };
  return Buffer.concat([field(1, id), ...(execId === undefined ? [] : [field(2, execId)])]);
}

/** Calls `method` in-process as a connection would; resolves with the error code or "OK". */
async function codeOfCall(method: Method, payload: Uint8Array, name: string): Promise<string> {
  const ctx: CallContext = { signal: AbortSignal.timeout(5000), metadata: new Map(), service: "containerd.task.v2.Task", method: name, afterReply: (cb) => queueMicrotask(cb) };
  try {
    await method.call(payload, ctx);
    return "OK";
  } catch (err) {
    return codeOf(err);
  }
}

const MALFORMED = ["", "../x", "a/b", "..", "a\0b", "a\nb", "x".repeat(77)];

function service(opts: { bundleScope?: BundleScope } = {}) {
  const reaper = { onExit: () => () => {}, own: () => {}, disown: () => {} };
  const publisher = { publish: () => {} };
  return new TaskService({ namespace: "badids", reaper, publisher, log: new Logger(), shimPid: process.pid, ...opts });
}

void suite("TaskService ids (no container)", () => {
  const methods = service().methods();

  void test("every method with an unknown id answers NotFound, except Create, Connect and Shutdown", async () => {
    const got: Record<string, string> = {};
    for (const [name, m] of Object.entries(methods)) {
      if (name === "Create") continue;
      got[name] = await codeOfCall(m, idRequest("nope"), name);
      if (EXEC_METHODS.includes(name)) got[`${name} (exec)`] = await codeOfCall(m, idRequest("nope", "e1"), name);
    }
    const want = Object.fromEntries(Object.keys(got).map((k) => [k, k.split(" ")[0]! in NOT_NOTFOUND ? "OK" : "NotFound"]));
    assert.deepEqual(got, want);
    assert.ok(Object.keys(got).length >= 17, `only ${Object.keys(got).length} calls`);
  });

  void test("every method but Connect and Shutdown refuses a malformed id with InvalidArgument", async () => {
    const bad: string[] = [];
    for (const [name, m] of Object.entries(methods)) {
      if (name === "Connect" || name === "Shutdown") continue;
      for (const id of MALFORMED) {
        const code = await codeOfCall(m, idRequest(id), name);
        if (code !== "InvalidArgument") bad.push(`${name}(${JSON.stringify(id)}): ${code}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  void test("Connect with an unknown id answers task_pid 0 and the shim's pid", async () => {
    const out = await methods["Connect"]!.call(idRequest("nope"), { signal: new AbortController().signal, metadata: new Map(), service: "", method: "Connect", afterReply: () => {} });
    const r = T.ConnectResponse.decode(out);
    assert.equal(r.taskPid, 0);
    assert.equal(r.shimPid, process.pid);
  });
});

void suite("TaskService Create bundle scope", () => {
  function scoped(t: TestContext) {
    const state = mkdtempSync(path.join(tmpdir(), "badids-"));
    t.after(() => rmSync(state, { recursive: true, force: true }));
    const own = path.join(state, "io.containerd.runtime.v2.task", "badids", "own");
    mkdirSync(own, { recursive: true });
    const outside = path.join(state, "elsewhere", "badids", "c1");
    mkdirSync(path.join(outside, "rootfs"), { recursive: true });
    writeFileSync(path.join(outside, "config.json"), "{}");
    return { own, outside, methods: service({ bundleScope: BundleScope.forDaemon(own, "badids") }).methods() };
  }

  void test("refuses a bundle outside containerd's bundle directories before touching it", async (t) => {
    const s = scoped(t);
    const create = (bundle: string) => codeOfCall(s.methods["Create"]!, T.CreateTaskRequest.encode({ id: "c1", bundle, stdout: path.join(bundle, "out") }).finish(), "Create");
    for (const bundle of [s.outside, `${s.own}/../../../elsewhere/badids/c1`, "/etc", "relative/c1", ""]) {
      assert.equal(await create(bundle), "InvalidArgument", bundle);
    }
    assert.deepEqual(readdirSync(s.outside).sort(), ["config.json", "rootfs"], "nothing was written to the refused bundle");
    assert.deepEqual(readdirSync(path.join(s.outside, "rootfs")), []);
  });

  void test("a malformed id is refused before the bundle is looked at", async (t) => {
    const s = scoped(t);
    const out = await codeOfCall(s.methods["Create"]!, T.CreateTaskRequest.encode({ id: "../c1", bundle: s.own }).finish(), "Create");
    assert.equal(out, "InvalidArgument");
  });
});

void suite("TaskService exec ids of a live container", () => {
  const ctx = useService();

  void test("unknown exec ids are NotFound and malformed ones InvalidArgument, for every exec method", async () => {
    const b = makeBundle(ctx.root.dir, "ids1", ["sleep", "1000"]);
    await ctx.h.call("Create", "CreateTaskRequest", "CreateTaskResponse", { id: "ids1", bundle: b.bundle, stdout: b.stdout });
    await ctx.h.call("Start", "StartRequest", "StartResponse", { id: "ids1" });
    const methods = ctx.h.svc.methods();
    const got: string[] = [];
    for (const name of EXEC_METHODS) {
      if (name === "Exec") continue; // Exec of an unknown exec id creates it
      got.push(`${name}: ${await codeOfCall(methods[name]!, idRequest("ids1", "nope"), name)}`);
      for (const e of MALFORMED.slice(1)) got.push(`${name}: ${await codeOfCall(methods[name]!, idRequest("ids1", e), name)}`);
    }
    for (const e of MALFORMED.slice(1)) got.push(`Exec: ${await codeOfCall(methods["Exec"]!, idRequest("ids1", e), "Exec")}`);
    const want = [
      ...EXEC_METHODS.filter((n) => n !== "Exec").flatMap((n) => [`${n}: NotFound`, ...MALFORMED.slice(1).map(() => `${n}: InvalidArgument`)]),
      ...MALFORMED.slice(1).map(() => "Exec: InvalidArgument"),
    ];
    assert.deepEqual(got, want);
    assert.deepEqual(readdirSync(b.bundle).filter((f) => f.endsWith(".pid") && f !== "init.pid"), [], "no exec pid file was written");
    const st = T.StateResponse.decode(await methods["State"]!.call(idRequest("ids1"), { signal: new AbortController().signal, metadata: new Map(), service: "", method: "State", afterReply: () => {} }));
    assert.equal(st.status, 2, "still RUNNING");
    await ctx.h.call("Kill", "KillRequest", null, { id: "ids1", signal: 9 });
    await ctx.h.call("Wait", "WaitRequest", "WaitResponse", { id: "ids1" });
    await ctx.h.call("Delete", "DeleteRequest", "DeleteResponse", { id: "ids1" });
  });
});
