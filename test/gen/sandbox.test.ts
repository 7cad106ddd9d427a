// Byte-level field-number checks for the `sandbox` generated module.
import { test } from "node:test";
import assert from "node:assert/strict";
import { containerd } from "../../src/gen/sandbox.js";

const bytes = (w: { finish(): Uint8Array }): number[] => [...w.finish()];
const sb = containerd.runtime.sandbox.v1;

test("CreateSandboxRequest: rootfs 3, options 4, netns_path 5, annotations 6", () => {
  assert.deepEqual(bytes(sb.CreateSandboxRequest.encode({ sandboxId: "s", bundlePath: "b" })), [0x0a, 0x01, 0x73, 0x12, 0x01, 0x62]);
  assert.deepEqual(bytes(sb.CreateSandboxRequest.encode({ rootfs: [{}], options: {}, netnsPath: "n" })),
    [0x1a, 0x00, 0x22, 0x00, 0x2a, 0x01, 0x6e]);
  assert.deepEqual(bytes(sb.CreateSandboxRequest.encode({ annotations: { k: "v" } })), [0x32, 0x06, 0x0a, 0x01, 0x6b, 0x12, 0x01, 0x76]);
});

test("StartSandboxResponse: pid 1, created_at 2, spec 3", () => {
  assert.deepEqual(bytes(sb.StartSandboxResponse.encode({ pid: 7, createdAt: {}, spec: {} })), [0x08, 0x07, 0x12, 0x00, 0x1a, 0x00]);
});

test("StopSandboxRequest timeout_secs 2; SandboxStatusRequest verbose 2", () => {
  assert.deepEqual(bytes(sb.StopSandboxRequest.encode({ timeoutSecs: 3 })), [0x10, 0x03]);
  assert.deepEqual(bytes(sb.SandboxStatusRequest.encode({ verbose: true })), [0x10, 0x01]);
});

test("SandboxStatusResponse: pid 2, state 3, info 4, created_at 5, exited_at 6, extra 7", () => {
  assert.deepEqual(bytes(sb.SandboxStatusResponse.encode({ pid: 1, state: "s" })), [0x10, 0x01, 0x1a, 0x01, 0x73]);
  assert.deepEqual(bytes(sb.SandboxStatusResponse.encode({ info: { k: "v" } })), [0x22, 0x06, 0x0a, 0x01, 0x6b, 0x12, 0x01, 0x76]);
  assert.deepEqual(bytes(sb.SandboxStatusResponse.encode({ createdAt: {}, exitedAt: { seconds: 1 }, extra: {} })),
    [0x2a, 0x00, 0x32, 0x02, 0x08, 0x01, 0x3a, 0x00]);
});

test("WaitSandboxResponse, PlatformResponse, SandboxMetricsResponse", () => {
  assert.deepEqual(bytes(sb.WaitSandboxResponse.encode({ exitStatus: 2, exitedAt: {} })), [0x08, 0x02, 0x12, 0x00]);
  assert.deepEqual(bytes(sb.PlatformResponse.encode({ platform: { os: "linux", osFeatures: ["f"], osVersion: "v", variant: "x" } })),
    [0x0a, 0x10, 0x0a, 0x05, ...Buffer.from("linux"), 0x1a, 0x01, 0x78, 0x22, 0x01, 0x76, 0x2a, 0x01, 0x66]);
  assert.deepEqual(bytes(sb.SandboxMetricsResponse.encode({ metrics: { timestamp: {}, id: "i", data: {} } })),
    [0x0a, 0x07, 0x0a, 0x00, 0x12, 0x01, 0x69, 0x1a, 0x00]);
});

test("empty responses encode to zero bytes; UpdateSandboxRequest fields", () => {
  for (const T of [sb.CreateSandboxResponse, sb.StopSandboxResponse, sb.PingResponse, sb.ShutdownSandboxResponse, sb.UpdateSandboxResponse]) {
    assert.equal(T.encode({}).finish().length, 0);
  }
  assert.deepEqual(bytes(sb.UpdateSandboxRequest.encode({ resources: {}, annotations: { k: "v" } })),
    [0x12, 0x00, 0x1a, 0x06, 0x0a, 0x01, 0x6b, 0x12, 0x01, 0x76]);
});

test("sandbox events: SandboxExit exit_status 2, exited_at 3", () => {
  const ev = containerd.events;
  assert.deepEqual(bytes(ev.SandboxCreate.encode({ sandboxId: "s" })), [0x0a, 0x01, 0x73]);
  assert.deepEqual(bytes(ev.SandboxStart.encode({ sandboxId: "s" })), [0x0a, 0x01, 0x73]);
  assert.deepEqual(bytes(ev.SandboxExit.encode({ exitStatus: 1, exitedAt: {} })), [0x10, 0x01, 0x1a, 0x00]);
});
