// Byte-level field-number checks for the `bootstrap` generated module (start/delete/-info path).
import { test } from "node:test";
import assert from "node:assert/strict";
import { containerd, runtimeoptions, google } from "../../src/gen/bootstrap.js";

const bytes = (w: { finish(): Uint8Array }): number[] => [...w.finish()];

const boot = containerd.runtime.bootstrap.v1;

test("BootstrapParams log_level (field 3) = -4 encodes as a 10-byte varint", () => {
  const b = bytes(boot.BootstrapParams.encode({ logLevel: boot.LogLevel.LOG_LEVEL_DEBUG }));
  assert.deepEqual(b, [0x18, 0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  assert.equal(boot.BootstrapParams.decode(Uint8Array.from(b)).logLevel, -4);
});

test("LogLevel enum values", () => {
  assert.equal(boot.LogLevel.LOG_LEVEL_INFO, 0);
  assert.equal(boot.LogLevel.LOG_LEVEL_TRACE, -8);
  assert.equal(boot.LogLevel.LOG_LEVEL_DEBUG, -4);
  assert.equal(boot.LogLevel.LOG_LEVEL_WARN, 4);
  assert.equal(boot.LogLevel.LOG_LEVEL_ERROR, 8);
  assert.equal(boot.LogLevel.LOG_LEVEL_FATAL, 10);
  assert.equal(boot.LogLevel.LOG_LEVEL_PANIC, 12);
  assert.equal(boot.Capability.CAPABILITY_UNSPECIFIED, 0);
});

test("BootstrapParams string fields 1,2,4,5,6,7,9 and extensions 8", () => {
  const one = (p: containerd.runtime.bootstrap.v1.BootstrapParams.$Properties) => bytes(boot.BootstrapParams.encode(p));
  assert.deepEqual(one({ instanceId: "a" }), [0x0a, 0x01, 0x61]);
  assert.deepEqual(one({ namespace: "a" }), [0x12, 0x01, 0x61]);
  assert.deepEqual(one({ containerdVersion: "a" }), [0x22, 0x01, 0x61]);
  assert.deepEqual(one({ containerdTtrpcAddress: "a" }), [0x2a, 0x01, 0x61]);
  assert.deepEqual(one({ containerdGrpcAddress: "a" }), [0x32, 0x01, 0x61]);
  assert.deepEqual(one({ containerdBinary: "a" }), [0x3a, 0x01, 0x61]);
  assert.deepEqual(one({ socketDir: "a" }), [0x4a, 0x01, 0x61]);
  // extensions[0].value (field 1 of Extension) = Any{type_url "t"}
  assert.deepEqual(one({ extensions: [{ value: { typeUrl: "t" } }] }), [0x42, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0x74]);
});

test("BootstrapParams socket_dir is proto3 optional: an explicit empty string is sent", () => {
  assert.deepEqual(bytes(boot.BootstrapParams.encode({ socketDir: "" })), [0x4a, 0x00]);
  const absent = boot.BootstrapParams.decode(new Uint8Array(0));
  assert.ok(absent.socketDir === undefined || absent.socketDir === null);
});

test("a runtime-options Any decodes as BootstrapParams (the ambiguity §1.4 describes)", () => {
  const any = google.protobuf.Any.encode({ typeUrl: "containerd.runc.v1.Options", value: Uint8Array.of(0x48, 0x01) }).finish();
  const p = boot.BootstrapParams.decode(any);
  assert.equal(p.instanceId, "containerd.runc.v1.Options");
  assert.equal(p.namespace, "H\u0001");
});

test("BootstrapResult version 1, address 2, protocol 3, capabilities 4, metadata 5", () => {
  const b = bytes(boot.BootstrapResult.encode({ version: 3, address: "u", protocol: "ttrpc" }));
  assert.deepEqual(b, [0x08, 0x03, 0x12, 0x01, 0x75, 0x1a, 0x05, ...Buffer.from("ttrpc")]);
  assert.deepEqual(bytes(boot.BootstrapResult.encode({ metadata: { k: "v" } })),
    [0x2a, 0x06, 0x0a, 0x01, 0x6b, 0x12, 0x01, 0x76]);
  const caps = boot.BootstrapResult.decode(Uint8Array.of(0x20, 0x00));
  assert.deepEqual(caps.capabilities, [0]);
});

test("task v2 DeleteResponse: pid 1, exit_status 2, exited_at 3", () => {
  const b = bytes(containerd.task.v2.DeleteResponse.encode({ pid: 42, exitStatus: 137, exitedAt: { seconds: 1, nanos: 2 } }));
  assert.deepEqual(b, [0x08, 42, 0x10, 0x89, 0x01, 0x1a, 0x04, 0x08, 0x01, 0x10, 0x02]);
  const d = containerd.task.v2.DeleteResponse.decode(Uint8Array.from(b));
  assert.equal(d.exitStatus, 137);
  assert.equal(d.exitedAt?.seconds, 1);
});

test("runc v1 Options field numbers", () => {
  const O = containerd.runc.v1.Options;
  assert.deepEqual(bytes(O.encode({ noPivotRoot: true })), [0x08, 0x01]);
  assert.deepEqual(bytes(O.encode({ noNewKeyring: true })), [0x10, 0x01]);
  assert.deepEqual(bytes(O.encode({ shimCgroup: "c" })), [0x1a, 0x01, 0x63]);
  assert.deepEqual(bytes(O.encode({ ioUid: 5 })), [0x20, 0x05]);
  assert.deepEqual(bytes(O.encode({ ioGid: 5 })), [0x28, 0x05]);
  assert.deepEqual(bytes(O.encode({ binaryName: "c" })), [0x32, 0x01, 0x63]);
  assert.deepEqual(bytes(O.encode({ root: "c" })), [0x3a, 0x01, 0x63]);
  assert.deepEqual(bytes(O.encode({ criuPath: "c" })), [0x42, 0x01, 0x63]);
  assert.deepEqual(bytes(O.encode({ systemdCgroup: true })), [0x48, 0x01]);
  assert.deepEqual(bytes(O.encode({ criuImagePath: "c" })), [0x52, 0x01, 0x63]);
  assert.deepEqual(bytes(O.encode({ criuWorkPath: "c" })), [0x5a, 0x01, 0x63]);
  assert.deepEqual(bytes(O.encode({ taskApiAddress: "c" })), [0x62, 0x01, 0x63]);
  assert.deepEqual(bytes(O.encode({ taskApiVersion: 3 })), [0x68, 0x03]);
});

test("linux runc (runctypes) CreateOptions field numbers differ from runc v1 Options", () => {
  const C = containerd.linux.runc.CreateOptions;
  assert.deepEqual(bytes(C.encode({ noPivotRoot: true })), [0x08, 0x01]);
  assert.deepEqual(bytes(C.encode({ emptyNamespaces: ["n"] })), [0x32, 0x01, 0x6e]);
  assert.deepEqual(bytes(C.encode({ noNewKeyring: true })), [0x40, 0x01]);
  assert.deepEqual(bytes(C.encode({ shimCgroup: "c" })), [0x4a, 0x01, 0x63]);
  assert.deepEqual(bytes(C.encode({ ioUid: 1 })), [0x50, 0x01]);
  assert.deepEqual(bytes(C.encode({ ioGid: 1 })), [0x58, 0x01]);
  assert.deepEqual(bytes(C.encode({ criuWorkPath: "c" })), [0x62, 0x01, 0x63]);
  assert.deepEqual(bytes(C.encode({ criuImagePath: "c" })), [0x6a, 0x01, 0x63]);
  const R = containerd.linux.runc.RuncOptions;
  assert.deepEqual(bytes(R.encode({ runtime: "r", systemdCgroup: true })), [0x0a, 0x01, 0x72, 0x20, 0x01]);
  const K = containerd.linux.runc.CheckpointOptions;
  assert.deepEqual(bytes(K.encode({ workPath: "w", imagePath: "i" })), [0x42, 0x01, 0x77, 0x4a, 0x01, 0x69]);
});

test("runtimeoptions.v1.Options: type_url 1, config_path 2, config_body 3 (bytes)", () => {
  const b = bytes(runtimeoptions.v1.Options.encode({ typeUrl: "t", configPath: "p", configBody: Uint8Array.of(0x41) }));
  assert.deepEqual(b, [0x0a, 0x01, 0x74, 0x12, 0x01, 0x70, 0x1a, 0x01, 0x41]);
});

test("RuntimeInfo: name 1, version 2 {version 1, revision 2}, options 3, features 4, annotations 5", () => {
  const I = containerd.types.RuntimeInfo;
  assert.deepEqual(bytes(I.encode({ name: "n" })), [0x0a, 0x01, 0x6e]);
  assert.deepEqual(bytes(I.encode({ version: { version: "v", revision: "r" } })),
    [0x12, 0x06, 0x0a, 0x01, 0x76, 0x12, 0x01, 0x72]);
  assert.deepEqual(bytes(I.encode({ options: { typeUrl: "o" } })), [0x1a, 0x03, 0x0a, 0x01, 0x6f]);
  assert.deepEqual(bytes(I.encode({ features: { typeUrl: "f" } })), [0x22, 0x03, 0x0a, 0x01, 0x66]);
  assert.deepEqual(bytes(I.encode({ annotations: { k: "v" } })), [0x2a, 0x06, 0x0a, 0x01, 0x6b, 0x12, 0x01, 0x76]);
});
