// SandboxService.snapshot(): what the daemon's SIGUSR1 dump shows of sandboxes (docs/debugging.md), in-process.
// Only Create/Stop/Shutdown of a sandbox that never started are driven here (no runc needed); a running
// pause process in the dump is checked through the shim binary (test/shim/diagnostics/dump-signal.test.ts).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { suite, test } from "node:test";
import { containerd } from "../../src/gen/sandbox.js";
import { Logger } from "../../src/log.js";
import { SandboxService } from "../../src/sandbox/index.js";
import type { Method } from "../../src/ttrpc/index.js";

const S = containerd.runtime.sandbox.v1;
const noReaper = {
  subscribe: () => ({ onExit() {}, buffered: () => [], close() {} }),
  onExit: () => () => {},
  own() {},
  disown() {},
};

function call(methods: Record<string, Method>, name: string, req: { encode(m: object): { finish(): Uint8Array } }, value: object) {
  const ctx = { signal: new AbortController().signal, metadata: new Map(), service: "s", method: name, afterReply() {} };
  return methods[name]!.call(req.encode(value).finish(), ctx);
}

void suite("SandboxService.snapshot()", () => {
  void test("lists each sandbox with its state, pid, bundle and netns, its stop, and nothing after shutdown", async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), "sbsnap-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const svc = new SandboxService({ namespace: "ns", reaper: noReaper as never, log: new Logger(), pauseBinary: process.execPath });
    const m = svc.methods();
    assert.deepEqual(svc.snapshot(), { sandboxes: [], creating: [] });
    const bundle = path.join(dir, "pod1");
    await call(m, "CreateSandbox", S.CreateSandboxRequest, { sandboxId: "pod1", bundlePath: bundle, netnsPath: "/var/run/netns/x" });
    assert.deepEqual(svc.snapshot(), {
      sandboxes: [{ id: "pod1", state: "created", pid: 0, bundle, netns: "/var/run/netns/x" }],
      creating: [],
    });
    await call(m, "StopSandbox", S.StopSandboxRequest, { sandboxId: "pod1" });
    const [stopped] = svc.snapshot().sandboxes;
    assert.equal(stopped?.state, "stopped");
    assert.equal(stopped?.exitStatus, 0);
    assert.ok(stopped?.exitedAt !== undefined && Math.abs(Date.parse(stopped.exitedAt) - Date.now()) < 60_000, `exitedAt ${stopped?.exitedAt}`);
    await call(m, "ShutdownSandbox", S.ShutdownSandboxRequest, { sandboxId: "pod1" });
    assert.deepEqual(svc.snapshot(), { sandboxes: [], creating: [] });
  });
});
