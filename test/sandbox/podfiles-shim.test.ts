// The shim binary as a CRI sandboxer writes the pod's hostname, hosts and resolv.conf where containerd's
// CRI mounts them from (<CRI root>/sandboxes/<id>, the CRI root found through the stand-in containerd's
// Introspection), and removes that directory at ShutdownSandbox; a failure is a clear error, not a crash.
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { before, suite, test } from "node:test";
import { alive } from "../helpers/shim.js";
import { podConfig, requireSandboxPrereqs, S, startShim, waitShimGone, type SandboxShim } from "./harness.js";

const read = (p: string): string => readFileSync(p, "utf8");
const podDir = (s: SandboxShim): string => path.join(s.criRoot, "sandboxes", s.id);
const create = (s: SandboxShim, options?: { typeUrl: string; value: Uint8Array }) =>
  s.sandbox("CreateSandbox", S.CreateSandboxRequest, { sandboxId: s.id, bundlePath: s.bundle, ...(options ? { options } : {}) }, S.CreateSandboxResponse);
const shutdown = (s: SandboxShim) => s.sandbox("ShutdownSandbox", S.ShutdownSandboxRequest, { sandboxId: s.id }, S.ShutdownSandboxResponse);

void suite("the pod files of a CRI sandbox", () => {
  before(requireSandboxPrereqs);

  void test("CreateSandbox writes hostname, hosts and resolv.conf (from dns_config) under the CRI root containerd reports", async (t) => {
    const s = await startShim(t);
    const dnsConfig = { servers: ["127.0.0.53", "127.0.0.54"], searches: ["e2e.svc.cluster.local"], options: ["ndots:5"] };
    await create(s, podConfig(s, { hostname: "web-0", dnsConfig }));
    const dir = podDir(s);
    assert.equal(statSync(dir).mode & 0o777, 0o755);
    assert.equal(read(path.join(dir, "hostname")), "web-0\n");
    assert.equal(read(path.join(dir, "hosts")), read("/etc/hosts"));
    assert.equal(read(path.join(dir, "resolv.conf")), "search e2e.svc.cluster.local\nnameserver 127.0.0.53\nnameserver 127.0.0.54\noptions ndots:5\n");
    for (const f of ["hostname", "hosts", "resolv.conf"]) assert.equal(statSync(path.join(dir, f)).mode & 0o777, 0o644, f);
    assert.deepEqual(s.introspection.requests, [["type==io.containerd.content.v1,id==content"]]);

    // CRI may add entries of its own there (1.7 creates missing mount sources); all of it goes.
    await mkdir(path.join(dir, "extra"));
    await shutdown(s);
    assert.equal(existsSync(dir), false, "ShutdownSandbox removes the pod's directory");
    await waitShimGone(s);
  });

  void test("gives a host-network pod without hostname the node's hostname and the host's resolv.conf", async (t) => {
    const s = await startShim(t);
    await create(s, podConfig(s, { hostname: "", linux: { cgroupParent: `/${s.ns}`, securityContext: { namespaceOptions: { network: 2 } } } }));
    assert.equal(read(path.join(podDir(s), "hostname")), `${os.hostname()}\n`);
    assert.equal(read(path.join(podDir(s), "resolv.conf")), read("/etc/resolv.conf"));
    assert.equal(read(path.join(podDir(s), "hosts")), read("/etc/hosts"));
    await shutdown(s);
    assert.equal(existsSync(podDir(s)), false);
  });

  void test("writes nothing and asks containerd nothing for a sandbox without a PodSandboxConfig", async (t) => {
    const s = await startShim(t);
    await create(s);
    assert.equal(existsSync(s.criRoot), false);
    assert.deepEqual(s.introspection.requests, []);
    await shutdown(s);
  });

  void test("fails CreateSandbox with FailedPrecondition naming the path when it cannot write, keeps serving, and succeeds once fixed", async (t) => {
    const s = await startShim(t);
    await mkdir(path.dirname(s.criRoot), { recursive: true });
    await writeFile(s.criRoot, "not a directory");
    await assert.rejects(create(s, podConfig(s)), (err: Error & { code?: string }) => {
      assert.equal(err.code, "FailedPrecondition");
      assert.match(err.message, new RegExp(`Cannot create the pod directory "${podDir(s)}": ENOTDIR`));
      return true;
    });
    assert.equal(alive(s.shimPid), true, "the shim is still there");
    await assert.rejects(s.sandbox("PingSandbox", S.PingRequest, { sandboxId: s.id }, S.PingResponse), { code: "NotFound" });
    await rm(s.criRoot);
    await create(s, podConfig(s));
    assert.equal(read(path.join(podDir(s), "hostname")), "pod-host\n");
    await shutdown(s);
  });
});
