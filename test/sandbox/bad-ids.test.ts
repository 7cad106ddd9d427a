// Every SandboxService method with an unknown sandbox id answers NotFound, with a malformed one
// InvalidArgument; CreateSandbox refuses bundles outside its BundleScope before writing anything. Driven
// by `methods()` (every containerd.runtime.sandbox.v1 request carries sandbox_id in field 1).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { suite, test, type TestContext } from "node:test";
import { BundleScope } from "../../src/bundle-scope.js";
import { codeOf } from "../../src/errdefs.js";
import { containerd } from "../../src/gen/sandbox.js";
import { Logger } from "../../src/log.js";
import { SandboxService } from "../../src/sandbox/index.js";
import type { CallContext, Method } from "../../src/ttrpc/index.js";

const S = containerd.runtime.sandbox.v1;

function idRequest(id: string): Uint8Array {
  const b = Buffer.from(id, "utf8");
  const len = b.length > 127 ? [(b.length & 0x7f) | 0x80, b.length >> 7] : [b.length];
  return Buffer.concat([Buffer.from([(1 << 3) | 2, ...len]), b]);
}

async function codeOfCall(method: Method, payload: Uint8Array, name: string): Promise<string> {
  const ctx: CallContext = { signal: AbortSignal.timeout(5000), metadata: new Map(), service: "containerd.runtime.sandbox.v1.Sandbox", method: name, afterReply: (cb) => queueMicrotask(cb) };
  try {
    await method.call(payload, ctx);
    return "OK";
  } catch (err) {
    return codeOf(err);
  }
}

function service(opts: { bundleScope?: BundleScope } = {}) {
  const reaper = { subscribe: () => { throw new Error("no process may be started"); }, onExit: () => () => {}, own: () => {}, disown: () => {} };
  return new SandboxService({ namespace: "badids", reaper, log: new Logger(), runcBinary: "/nonexistent/runc", pauseBinary: "/nonexistent/catatonit", ...opts });
}

const MALFORMED = ["", "../x", "a/b", "..", "a\0b", "a\nb", "x".repeat(77)];

void suite("SandboxService ids", () => {
  const methods = service().methods();

  void test("every method but CreateSandbox answers NotFound for an unknown sandbox id", async () => {
    const got: Record<string, string> = {};
    for (const [name, m] of Object.entries(methods)) if (name !== "CreateSandbox") got[name] = await codeOfCall(m, idRequest("nope"), name);
    assert.deepEqual(got, Object.fromEntries(Object.keys(got).map((k) => [k, "NotFound"])));
    assert.ok(Object.keys(got).length >= 8, `only ${Object.keys(got).length} methods`);
  });

  void test("every method refuses a malformed sandbox id with InvalidArgument", async () => {
    const bad: string[] = [];
    for (const [name, m] of Object.entries(methods)) {
      for (const id of MALFORMED) {
        const payload = name === "CreateSandbox" ? S.CreateSandboxRequest.encode({ sandboxId: id, bundlePath: "/nonexistent" }).finish() : idRequest(id);
        const code = await codeOfCall(m, payload, name);
        if (code !== "InvalidArgument") bad.push(`${name}(${JSON.stringify(id)}): ${code}`);
      }
    }
    assert.deepEqual(bad, []);
  });
});

void suite("SandboxService CreateSandbox bundle scope", () => {
  function scoped(t: TestContext) {
    const state = mkdtempSync(path.join(tmpdir(), "badids-sb-"));
    t.after(() => rmSync(state, { recursive: true, force: true }));
    const own = path.join(state, "io.containerd.sandbox.controller.v1.shim", "badids", "own");
    mkdirSync(own, { recursive: true });
    const outside = path.join(state, "elsewhere", "badids", "sb1");
    mkdirSync(outside, { recursive: true });
    return { own, outside, state, methods: service({ bundleScope: BundleScope.forDaemon(own, "badids") }).methods() };
  }

  void test("refuses a bundle path outside containerd's bundle directories and writes nothing there", async (t) => {
    const s = scoped(t);
    for (const bundlePath of [s.outside, `${s.own}/../../../elsewhere/badids/sb1`, "/etc", "relative/sb1", s.state]) {
      const payload = S.CreateSandboxRequest.encode({ sandboxId: "sb1", bundlePath }).finish();
      assert.equal(await codeOfCall(s.methods["CreateSandbox"]!, payload, "CreateSandbox"), "InvalidArgument", bundlePath);
    }
    assert.deepEqual(readdirSync(s.outside), [], "no rootfs or config.json was written");
    // The sandbox was not created: it stays unknown.
    assert.equal(await codeOfCall(s.methods["SandboxStatus"]!, idRequest("sb1"), "SandboxStatus"), "NotFound");
  });
});
