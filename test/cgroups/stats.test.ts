import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { suite, test } from "node:test";
import { io } from "../../src/gen/metrics.js";
import { loadCgroup } from "../../src/cgroups/cgroup.js";
import { parseRdma } from "../../src/cgroups/fields.js";
import { readStats } from "../../src/cgroups/stats.js";
import { parseBlkio } from "../../src/cgroups/stats-v1.js";
import { parseIoStat, parsePsi } from "../../src/cgroups/stats-v2.js";
import { repoRoot } from "../runc/helpers.js";

const FIX = path.join(repoRoot(), "test", "fixtures", "cgroup");
const V1_DIR = path.join(FIX, "v1");
const v1 = {
  version: 1 as const,
  dirs: new Map(["memory", "cpu", "cpuacct", "pids", "blkio", "hugetlb", "rdma", "freezer"].map((c) => [c, path.join(V1_DIR, c)])),
};
const opts = { sysDevBlock: path.join(FIX, "sys-dev-block") };

void suite("readStats() on cgroup v1", () => {
  void test("encodes io.containerd.cgroups.v1.Metrics from the fixture files", async () => {
    const any = await readStats(v1, opts);
    assert.equal(any.typeUrl, "io.containerd.cgroups.v1.Metrics");
    const m = io.containerd.cgroups.v1.Metrics.decode(any.value);
    assert.deepEqual({ ...m.pids }, { current: 5 }, "'max' is limit 0 in v1 (absent on the wire)");
    assert.equal(m.cpu?.usage?.total, 1723992821151);
    assert.deepEqual(m.cpu?.usage?.perCpu, [837426884024, 886565937127]);
    assert.equal(m.cpu?.usage?.user, 1_500_000_000, "150 USER_HZ ticks");
    assert.equal(m.cpu?.usage?.kernel, 250_000_000);
    assert.deepEqual({ ...m.cpu?.throttling }, { periods: 10, throttledPeriods: 4, throttledTime: 123456 });
    const mem = m.memory;
    assert.equal(mem?.cache, 9265152);
    assert.equal(mem?.rssHuge, 2097152);
    assert.equal(mem?.pgPgIn, 69083);
    assert.equal(mem?.pgMajFault, 7);
    assert.equal(mem?.hierarchicalMemoryLimit, 16777216);
    assert.equal(mem?.hierarchicalSwapLimit, 9223372036854771712);
    assert.equal(mem?.totalRssHuge, 4194304);
    assert.equal(mem?.totalPgPgOut, 38652122);
    assert.equal(mem?.totalActiveFile, 1234);
    assert.equal(mem?.totalUnevictable, 5678);
    assert.deepEqual({ ...mem?.usage }, { usage: 1048576, limit: 16777216, max: 2097152, failcnt: 3 });
    assert.deepEqual({ ...mem?.swap }, { usage: 1052672, limit: 9223372036854771712 });
    assert.deepEqual({ ...mem?.kernel }, { usage: 65536, limit: 9223372036854771712, max: 131072 });
    assert.deepEqual({ ...m.memoryOomControl }, { underOom: 1, oomKill: 2 });
  });

  void test("reads blkio from the throttle files when the CFQ ones are empty, with device names", async () => {
    const m = io.containerd.cgroups.v1.Metrics.decode((await readStats(v1, opts)).value);
    const bytes = m.blkio?.ioServiceBytesRecursive?.map((e) => ({ ...e }));
    assert.deepEqual(bytes?.[0], { op: "Read", device: "/dev/sda", major: 8, value: 4096 });
    assert.equal(bytes?.length, 6, "per-device Total kept, the global Total dropped");
    assert.deepEqual(m.blkio?.ioServicedRecursive?.map((e) => e.value), [1, 2, 3]);
    assert.deepEqual({ ...m.blkio?.sectorsRecursive?.[0] }, { device: "/dev/sda", major: 8, value: 24 });
  });

  void test("reads hugetlb per page size and rdma", async () => {
    const m = io.containerd.cgroups.v1.Metrics.decode((await readStats(v1, opts)).value);
    assert.deepEqual(m.hugetlb.map((h) => ({ ...h })), [
      { pagesize: "1GB" },
      { pagesize: "2MB", usage: 2097152, max: 4194304, failcnt: 1 },
    ]);
    assert.deepEqual(m.rdma?.current?.map((e) => ({ ...e })), [{ device: "mlx4_0", hcaHandles: 2, hcaObjects: 2000 }]);
    assert.deepEqual(m.rdma?.limit?.map((e) => ({ ...e })), [{ device: "mlx4_0", hcaHandles: 4294967295, hcaObjects: 4294967295 }]);
  });

  void test("skips missing controllers and files", async () => {
    const only = { version: 1 as const, dirs: new Map([["pids", path.join(V1_DIR, "pids")], ["cpu", "/nonexistent"]]) };
    const m = io.containerd.cgroups.v1.Metrics.decode((await readStats(only)).value);
    assert.equal(m.pids?.current, 5);
    assert.equal(m.memory, null);
    assert.equal(m.blkio, null);
  });

  void test("is NotFound when the cgroup is gone or unknown", async () => {
    await assert.rejects(readStats(undefined), { code: "NotFound", message: "cgroup does not exist" });
    await assert.rejects(readStats({ version: 1, dirs: new Map([["memory", "/nonexistent/x"]]) }), { code: "NotFound" });
    await assert.rejects(readStats({ version: 2, dir: "/nonexistent/y" }), { code: "NotFound" });
  });

  void test("reads this process's real v1 cgroup on this host", async (t) => {
    const cg = await loadCgroup(process.pid);
    if (cg?.version !== 1) return t.skip("not a cgroup v1 host");
    const m = io.containerd.cgroups.v1.Metrics.decode((await readStats(cg)).value);
    assert.ok((m.memory?.usage?.usage ?? 0) > 0);
    assert.ok((m.cpu?.usage?.total ?? 0) > 0);
  });
});

void suite("readStats() on cgroup v2", () => {
  const v2 = { version: 2 as const, dir: path.join(FIX, "v2") };

  void test("encodes io.containerd.cgroups.v2.Metrics from the fixture files", async () => {
    const any = await readStats(v2);
    assert.equal(any.typeUrl, "io.containerd.cgroups.v2.Metrics");
    const m = io.containerd.cgroups.v2.Metrics.decode(any.value);
    assert.deepEqual({ ...m.pids }, { current: 3, limit: 18446744073709551615 });
    const { psi, ...cpu } = m.cpu ?? {};
    assert.deepEqual({ ...cpu }, {
      usageUsec: 84000, userUsec: 60000, systemUsec: 24000, nrPeriods: 5, nrThrottled: 1, throttledUsec: 900,
      nrBursts: 2, burstUsec: 30,
    });
    assert.deepEqual({ ...psi?.some }, { avg10: 1.5, avg60: 0.25, total: 12345 });
    assert.equal(psi?.full?.total, 678);
    const mem = m.memory;
    assert.equal(mem?.anon, 221184);
    assert.equal(mem?.kernelStack, 32768);
    assert.equal(mem?.fileMapped, 12288);
    assert.equal(mem?.anonThp, 2097152);
    assert.equal(mem?.slab, 139264);
    assert.equal(mem?.pgfault, 1234);
    assert.equal(mem?.workingsetActivateFile, 4);
    assert.equal(mem?.thpCollapseAlloc, 14);
    assert.equal(mem?.usage, 512000);
    assert.equal(mem?.usageLimit, 16777216);
    assert.equal(mem?.swapLimit, 18446744073709551615);
    assert.equal(mem?.maxUsage, 1048576);
    assert.equal(mem?.psi?.some?.total, 10);
    assert.deepEqual({ ...m.memoryEvents }, { max: 17, oom: 2, oomKill: 1 });
  });

  void test("reads io.stat, hugetlb and rdma", async () => {
    const m = io.containerd.cgroups.v2.Metrics.decode((await readStats(v2)).value);
    assert.deepEqual(m.io?.usage?.map((e) => ({ ...e })), [
      { major: 8, rbytes: 4096, wbytes: 8192, rios: 1, wios: 2 },
      { major: 253, minor: 1, rbytes: 1, wbytes: 2, rios: 3, wios: 4 },
    ]);
    assert.deepEqual(m.hugetlb.map((h) => ({ ...h })), [{ pagesize: "2MB", current: 2097152, max: 18446744073709551615, failcnt: 3 }]);
    assert.deepEqual(m.rdma?.current?.map((e) => ({ ...e })), [{ device: "mlx4_0", hcaHandles: 1, hcaObjects: 20 }]);
  });

  void test("keeps answering for an empty cgroup directory", async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), "cgv2-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const m = io.containerd.cgroups.v2.Metrics.decode((await readStats({ version: 2, dir })).value);
    assert.equal(m.memory, null);
    assert.deepEqual(m.hugetlb, []);
  });
});

void suite("stat file parsers", () => {
  void test("parse blkio, io.stat, rdma and PSI lines", () => {
    assert.deepEqual(parseBlkio("8:16 Read 5\n8:16 7\nTotal 12\ngarbage\n"), [
      { op: "Read", major: 8, minor: 16, value: 5 }, { op: "", major: 8, minor: 16, value: 7 },
    ]);
    assert.deepEqual(parseIoStat("259:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6\n"),
      [{ major: 259, minor: 0, rbytes: 1, wbytes: 2, rios: 3, wios: 4 }]);
    assert.deepEqual(parseRdma("mlx5_1 hca_handle=3\n"), [{ device: "mlx5_1", hcaHandles: 3, hcaObjects: 0 }]);
    assert.equal(parsePsi(undefined), undefined);
    assert.deepEqual(parsePsi("some avg10=0.10 avg60=0.20 avg300=0.30 total=4\n"),
      { some: { avg10: 0.1, avg60: 0.2, avg300: 0.3, total: 4 } });
  });
});
