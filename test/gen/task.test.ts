// Byte-level field-number checks for the `task` generated module.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { containerd, google } from "../../src/gen/task.js";

const bytes = (w: { finish(): Uint8Array }): number[] => [...w.finish()];
const v2 = containerd.task.v2;

test("StateResponse exit_status=7 is field 9 varint", () => {
  assert.deepEqual(bytes(v2.StateResponse.encode({ exitStatus: 7 })), [0x48, 0x07]);
});

test("StateResponse: status 4 (enum), terminal 8, exited_at 10, exec_id 11", () => {
  assert.deepEqual(bytes(v2.StateResponse.encode({ status: containerd.v1.types.Status.PAUSED })), [0x20, 0x04]);
  assert.deepEqual(bytes(v2.StateResponse.encode({ terminal: true })), [0x40, 0x01]);
  assert.deepEqual(bytes(v2.StateResponse.encode({ exitedAt: { nanos: 1 } })), [0x52, 0x02, 0x10, 0x01]);
  assert.deepEqual(bytes(v2.StateResponse.encode({ execId: "e" })), [0x5a, 0x01, 0x65]);
  assert.deepEqual(bytes(v2.StateResponse.encode({ id: "i", bundle: "b", pid: 9 })),
    [0x0a, 0x01, 0x69, 0x12, 0x01, 0x62, 0x18, 0x09]);
  assert.deepEqual(bytes(v2.StateResponse.encode({ stdin: "a", stdout: "b", stderr: "c" })),
    [0x2a, 0x01, 0x61, 0x32, 0x01, 0x62, 0x3a, 0x01, 0x63]);
});

test("Go zero time (seconds -62135596800) survives as a JS number", () => {
  const b = google.protobuf.Timestamp.encode({ seconds: -62135596800 }).finish();
  assert.equal(b.length, 11);
  assert.equal(google.protobuf.Timestamp.decode(b).seconds, -62135596800);
});

test("Status enum values", () => {
  const S = containerd.v1.types.Status;
  assert.deepEqual([S.UNKNOWN, S.CREATED, S.RUNNING, S.STOPPED, S.PAUSED, S.PAUSING], [0, 1, 2, 3, 4, 5]);
});

test("CreateTaskRequest: options is field 10, rootfs 3 of Mount{type 1, source 2, target 3, options 4}", () => {
  assert.deepEqual(bytes(v2.CreateTaskRequest.encode({ options: { typeUrl: "x" } })), [0x52, 0x03, 0x0a, 0x01, 0x78]);
  assert.deepEqual(bytes(v2.CreateTaskRequest.encode({ rootfs: [{ type: "t", source: "s", target: "g", options: ["o"] }] })),
    [0x1a, 0x0c, 0x0a, 0x01, 0x74, 0x12, 0x01, 0x73, 0x1a, 0x01, 0x67, 0x22, 0x01, 0x6f]);
  assert.deepEqual(bytes(v2.CreateTaskRequest.encode({ terminal: true, checkpoint: "c", parentCheckpoint: "p" })),
    [0x20, 0x01, 0x42, 0x01, 0x63, 0x4a, 0x01, 0x70]);
  const req = v2.CreateTaskRequest.decode(Uint8Array.of(0x52, 0x05, 0x0a, 0x01, 0x78, 0x12, 0x00));
  assert.equal(req.options?.typeUrl, "x");
});

test("ExecProcessRequest spec field 7; KillRequest signal 3, all 4", () => {
  assert.deepEqual(bytes(v2.ExecProcessRequest.encode({ spec: { typeUrl: "s" } })), [0x3a, 0x03, 0x0a, 0x01, 0x73]);
  assert.deepEqual(bytes(v2.KillRequest.encode({ signal: 9, all: true })), [0x18, 0x09, 0x20, 0x01]);
  assert.deepEqual(bytes(v2.ResizePtyRequest.encode({ width: 80, height: 24 })), [0x18, 80, 0x20, 24]);
  assert.deepEqual(bytes(v2.CloseIORequest.encode({ stdin: true })), [0x18, 0x01]);
});

test("UpdateTaskRequest annotations (map) field 3; CheckpointTaskRequest options field 3", () => {
  assert.deepEqual(bytes(v2.UpdateTaskRequest.encode({ annotations: { k: "v" } })),
    [0x1a, 0x06, 0x0a, 0x01, 0x6b, 0x12, 0x01, 0x76]);
  assert.deepEqual(bytes(v2.CheckpointTaskRequest.encode({ path: "p", options: {} })), [0x12, 0x01, 0x70, 0x1a, 0x00]);
});

test("WaitResponse, ConnectResponse, StatsResponse, PidsResponse field numbers", () => {
  assert.deepEqual(bytes(v2.WaitResponse.encode({ exitStatus: 1, exitedAt: {} })), [0x08, 0x01, 0x12, 0x00]);
  assert.deepEqual(bytes(v2.ConnectResponse.encode({ shimPid: 1, taskPid: 2, version: "v" })),
    [0x08, 0x01, 0x10, 0x02, 0x1a, 0x01, 0x76]);
  assert.deepEqual(bytes(v2.StatsResponse.encode({ stats: {} })), [0x0a, 0x00]);
  assert.deepEqual(bytes(v2.PidsResponse.encode({ processes: [{ pid: 3, info: {} }] })), [0x0a, 0x04, 0x08, 0x03, 0x12, 0x00]);
  assert.deepEqual(bytes(v2.ShutdownRequest.encode({ now: true })), [0x10, 0x01]);
  assert.deepEqual(bytes(v2.StartResponse.encode({ pid: 5 })), [0x08, 0x05]);
  assert.deepEqual(bytes(v2.CreateTaskResponse.encode({ pid: 5 })), [0x08, 0x05]);
});

test("DeleteResponse in the task module matches the bootstrap module's wire", () => {
  assert.deepEqual(bytes(v2.DeleteResponse.encode({ pid: 1, exitStatus: 2, exitedAt: {} })), [0x08, 0x01, 0x10, 0x02, 0x1a, 0x00]);
});

test("TaskExit round trip and field numbers", () => {
  const E = containerd.events.TaskExit;
  const m = { containerId: "c", id: "e", pid: 300, exitStatus: 137, exitedAt: { seconds: 1700000000, nanos: 5 } };
  const b = E.encode(m).finish();
  assert.deepEqual([...b.subarray(0, 10)], [0x0a, 0x01, 0x63, 0x12, 0x01, 0x65, 0x18, 0xac, 0x02, 0x20]);
  assert.equal(b[12], 0x2a);
  const d = E.decode(b);
  assert.equal(d.containerId, "c");
  assert.equal(d.id, "e");
  assert.equal(d.pid, 300);
  assert.equal(d.exitStatus, 137);
  assert.equal(d.exitedAt?.seconds, 1700000000);
  assert.equal(d.exitedAt?.nanos, 5);
});

test("other task events: field numbers", () => {
  const ev = containerd.events;
  assert.deepEqual(bytes(ev.TaskCreate.encode({ pid: 1, checkpoint: "c" })), [0x2a, 0x01, 0x63, 0x30, 0x01]);
  assert.deepEqual(bytes(ev.TaskCreate.encode({ io: { terminal: true, stderr: "e" } })), [0x22, 0x05, 0x1a, 0x01, 0x65, 0x20, 0x01]);
  assert.deepEqual(bytes(ev.TaskStart.encode({ pid: 1 })), [0x10, 0x01]);
  assert.deepEqual(bytes(ev.TaskDelete.encode({ pid: 1, exitStatus: 2, exitedAt: {}, id: "i" })),
    [0x10, 0x01, 0x18, 0x02, 0x22, 0x00, 0x2a, 0x01, 0x69]);
  assert.deepEqual(bytes(ev.TaskExecStarted.encode({ execId: "e", pid: 4 })), [0x12, 0x01, 0x65, 0x18, 0x04]);
  assert.deepEqual(bytes(ev.TaskExecAdded.encode({ containerId: "c", execId: "e" })), [0x0a, 0x01, 0x63, 0x12, 0x01, 0x65]);
  assert.deepEqual(bytes(ev.TaskCheckpointed.encode({ checkpoint: "k" })), [0x12, 0x01, 0x6b]);
  for (const T of [ev.TaskOOM, ev.TaskPaused, ev.TaskResumed]) {
    assert.deepEqual(bytes(T.encode({ containerId: "c" })), [0x0a, 0x01, 0x63]);
  }
});

test("Envelope: timestamp 1, namespace 2, topic 3, event 4; ForwardRequest envelope 1", () => {
  const Env = containerd.types.Envelope;
  assert.deepEqual(bytes(Env.encode({ timestamp: { seconds: 1 } })), [0x0a, 0x02, 0x08, 0x01]);
  assert.deepEqual(bytes(Env.encode({ namespace: "n", topic: "/t", event: { typeUrl: "x" } })),
    [0x12, 0x01, 0x6e, 0x1a, 0x02, 0x2f, 0x74, 0x22, 0x03, 0x0a, 0x01, 0x78]);
  const F = containerd.services.events.ttrpc.v1.ForwardRequest;
  assert.deepEqual(bytes(F.encode({ envelope: { topic: "/" } })), [0x0a, 0x03, 0x1a, 0x01, 0x2f]);
});

test("runc ProcessDetails and CheckpointOptions (task module)", () => {
  assert.deepEqual(bytes(containerd.runc.v1.ProcessDetails.encode({ execId: "e" })), [0x0a, 0x01, 0x65]);
  const K = containerd.runc.v1.CheckpointOptions;
  assert.deepEqual(bytes(K.encode({ exit: true, terminal: true })), [0x08, 0x01, 0x20, 0x01]);
  assert.deepEqual(bytes(K.encode({ imagePath: "i", workPath: "w", parentPath: "p" })),
    [0x42, 0x01, 0x69, 0x4a, 0x01, 0x77, 0x52, 0x01, 0x70]);
});

test("Empty encodes to zero bytes", () => {
  assert.equal(google.protobuf.Empty.encode({}).finish().length, 0);
});

// protobufjs is run with --no-service, so services exist only in the .proto text: check that v3 is
// exactly v2's method list (same request/response messages) and that both list every §4.1 method.
test("task v2 and v3 services list the same 17 methods", () => {
  const root = fileURLToPath(new URL("../../../proto/containerd/runtime/task/", import.meta.url));
  const rpcs = (file: string): string[] =>
    [...readFileSync(root + file, "utf8").matchAll(/rpc (\w+)\(([\w.]+)\) returns \(([\w.]+)\)/g)]
      .map((m) => `${m[1]}(${(m[2] ?? "").replace(/^containerd\.task\.v2\./, "")})->${(m[3] ?? "").replace(/^containerd\.task\.v2\./, "")}`);
  const a = rpcs("v2/shim.proto");
  const b = rpcs("v3/shim.proto");
  assert.equal(a.length, 17);
  assert.deepEqual(b, a);
  for (const m of ["State", "Create", "Start", "Delete", "Pids", "Pause", "Resume", "Checkpoint", "Kill", "Exec",
    "ResizePty", "CloseIO", "Update", "Wait", "Stats", "Connect", "Shutdown"]) {
    assert.ok(a.some((r) => r.startsWith(m + "(")), m);
  }
});
