// Byte-level field-number checks for the `metrics` generated module (cgroups v1/v2 Stats payloads).
import { test } from "node:test";
import assert from "node:assert/strict";
import { io } from "../../src/gen/metrics.js";

const bytes = (w: { finish(): Uint8Array }): number[] => [...w.finish()];
const v1 = io.containerd.cgroups.v1;
const v2 = io.containerd.cgroups.v2;

test("cgroups v2 Metrics.memory (4) .usage (32)", () => {
  // field 32 varint: tag 256 = 0x80 0x02
  assert.deepEqual(bytes(v2.Metrics.encode({ memory: { usage: 5 } })), [0x22, 0x03, 0x80, 0x02, 0x05]);
  assert.equal(v2.Metrics.decode(Uint8Array.of(0x22, 0x03, 0x80, 0x02, 0x05)).memory?.usage, 5);
});

test("cgroups v2 MemoryStat high fields 33..42 and psi 38", () => {
  const M = v2.MemoryStat;
  assert.deepEqual(bytes(M.encode({ usageLimit: 1 })), [0x88, 0x02, 0x01]);
  assert.deepEqual(bytes(M.encode({ swapMaxUsage: 1 })), [0xa8, 0x02, 0x01]);
  assert.deepEqual(bytes(M.encode({ psi: {} })), [0xb2, 0x02, 0x00]);
  assert.deepEqual(bytes(M.encode({ workingsetActivateFile: 1 })), [0xd0, 0x02, 0x01]);
  assert.deepEqual(bytes(M.encode({ anon: 1, pgmajfault: 1 })), [0x08, 0x01, 0x98, 0x01, 0x01]);
});

test("cgroups v2 Metrics top level: pids 1, cpu 2, rdma 5, io 6, hugetlb 7, memory_events 8, network 9", () => {
  assert.deepEqual(bytes(v2.Metrics.encode({ pids: { current: 1, limit: 2 } })), [0x0a, 0x04, 0x08, 0x01, 0x10, 0x02]);
  assert.deepEqual(bytes(v2.Metrics.encode({ cpu: { usageUsec: 1 } })), [0x12, 0x02, 0x08, 0x01]);
  assert.deepEqual(bytes(v2.Metrics.encode({ rdma: {}, io: {} })), [0x2a, 0x00, 0x32, 0x00]);
  assert.deepEqual(bytes(v2.Metrics.encode({ hugetlb: [{ failcnt: 1 }] })), [0x3a, 0x02, 0x20, 0x01]);
  assert.deepEqual(bytes(v2.Metrics.encode({ memoryEvents: { oomKill: 3, oomGroupKill: 1 } })), [0x42, 0x04, 0x28, 0x03, 0x30, 0x01]);
  assert.deepEqual(bytes(v2.Metrics.encode({ network: [{ txDropped: 1 }] })), [0x4a, 0x02, 0x48, 0x01]);
});

test("cgroups v2 CPUStat psi 7 / nr_bursts 8 / burst_usec 9; PSIData doubles; IOStat psi 2", () => {
  assert.deepEqual(bytes(v2.CPUStat.encode({ psi: {}, nrBursts: 1, burstUsec: 2 })), [0x3a, 0x00, 0x40, 0x01, 0x48, 0x02]);
  const d = bytes(v2.PSIStats.encode({ full: { avg10: 1, total: 2 } }));
  assert.deepEqual(d, [0x12, 0x0b, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x20, 0x02]);
  assert.deepEqual(bytes(v2.IOStat.encode({ usage: [{ wios: 1 }], psi: {} })), [0x0a, 0x02, 0x30, 0x01, 0x12, 0x00]);
  assert.deepEqual(bytes(v2.RdmaEntry.encode({ device: "d", hcaHandles: 1, hcaObjects: 2 })), [0x0a, 0x01, 0x64, 0x10, 0x01, 0x18, 0x02]);
});

test("cgroups v1 Metrics top level and nested field numbers", () => {
  assert.deepEqual(bytes(v1.Metrics.encode({ hugetlb: [{ pagesize: "2M" }] })), [0x0a, 0x04, 0x22, 0x02, 0x32, 0x4d]);
  assert.deepEqual(bytes(v1.Metrics.encode({ cpu: { usage: { perCpu: [1, 2] } } })), [0x1a, 0x06, 0x0a, 0x04, 0x22, 0x02, 0x01, 0x02]);
  assert.deepEqual(bytes(v1.Metrics.encode({ memory: { usage: { failcnt: 1 } } })), [0x22, 0x05, 0x8a, 0x02, 0x02, 0x20, 0x01]);
  assert.deepEqual(bytes(v1.Metrics.encode({ memory: { totalUnevictable: 1, kernelTcp: {} } })), [0x22, 0x06, 0x80, 0x02, 0x01, 0xa2, 0x02, 0x00]);
  assert.deepEqual(bytes(v1.Metrics.encode({ blkio: { sectorsRecursive: [{ value: 1 }] } })), [0x2a, 0x04, 0x42, 0x02, 0x28, 0x01]);
  assert.deepEqual(bytes(v1.Metrics.encode({ rdma: {}, network: [{}], cgroupStats: { nrIoWait: 1 } })),
    [0x32, 0x00, 0x3a, 0x00, 0x42, 0x02, 0x28, 0x01]);
  assert.deepEqual(bytes(v1.Metrics.encode({ memoryOomControl: { oomKill: 1 } })), [0x4a, 0x02, 0x18, 0x01]);
  assert.deepEqual(bytes(v1.Metrics.encode({ pids: { limit: 1 } })), [0x12, 0x02, 0x10, 0x01]);
  assert.deepEqual(bytes(v1.CPUStat.encode({ throttling: { throttledTime: 1 } })), [0x12, 0x02, 0x18, 0x01]);
});

test("uint64 counters decode to JS numbers", () => {
  const b = v2.PidsStat.encode({ current: 2 ** 40 }).finish();
  const d = v2.PidsStat.decode(b);
  assert.equal(typeof d.current, "number");
  assert.equal(d.current, 2 ** 40);
});
