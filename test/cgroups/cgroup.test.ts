import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { suite, test } from "node:test";
import {
  cgroupMode, loadCgroup, parseKeyValues, parseMountinfo, parseProcCgroup, parseU64, resolveCgroup, u64, MAX_U64,
} from "../../src/cgroups/cgroup.js";
import { io } from "../../src/gen/metrics.js";
import { repoRoot } from "../runc/helpers.js";

const FIX = path.join(repoRoot(), "test", "fixtures", "cgroup");
const fixture = (name: string) => readFileSync(path.join(FIX, name), "utf8");

void suite("cgroup discovery", () => {
  void test("reads v1 hierarchies by controller and the cgroup2 mount from mountinfo", () => {
    const m = parseMountinfo(fixture("mountinfo-hybrid.txt"));
    assert.deepEqual(m.v1.get("cpuacct"), { mountpoint: "/sys/fs/cgroup/cpu,cpuacct", root: "/" });
    assert.deepEqual(m.v1.get("memory"), { mountpoint: "/sys/fs/cgroup/memory", root: "/kubepods" });
    assert.ok(m.v1.has("name=systemd"));
    assert.ok(!m.v1.has("xattr") && !m.v1.has("rw"));
    assert.deepEqual(m.v2, { mountpoint: "/sys/fs/cgroup/unified", root: "/" });
  });

  void test("tells hybrid, legacy and unified hosts apart", () => {
    assert.equal(cgroupMode(parseMountinfo(fixture("mountinfo-hybrid.txt"))), "hybrid");
    assert.equal(cgroupMode(parseMountinfo(fixture("mountinfo-legacy.txt"))), "legacy");
    assert.equal(cgroupMode(parseMountinfo(fixture("mountinfo-unified.txt"))), "unified");
  });

  void test("maps /proc/<pid>/cgroup onto v1 mounts, stripping a mount's root", () => {
    const cg = resolveCgroup(parseMountinfo(fixture("mountinfo-hybrid.txt")), parseProcCgroup(fixture("proc-cgroup-v1.txt")));
    assert.equal(cg?.version, 1);
    if (cg?.version !== 1) return;
    assert.equal(cg.dirs.get("memory"), "/sys/fs/cgroup/memory/k8s/ctr1");
    assert.equal(cg.dirs.get("cpu"), "/sys/fs/cgroup/cpu,cpuacct/k8s/ctr1");
    assert.equal(cg.dirs.get("cpuacct"), "/sys/fs/cgroup/cpu,cpuacct/k8s/ctr1");
    assert.equal(cg.dirs.get("pids"), "/sys/fs/cgroup/pids/k8s/ctr1");
    assert.ok(!cg.dirs.has("net_cls"), "a controller without a mount is left out");
  });

  void test("uses the 0:: line on a unified host", () => {
    const cg = resolveCgroup(parseMountinfo(fixture("mountinfo-unified.txt")), parseProcCgroup(fixture("proc-cgroup-v2.txt")));
    assert.deepEqual(cg, { version: 2, dir: "/sys/fs/cgroup/default/ctr2" });
  });

  void test("loads from a proc tree, and gives undefined for a gone process", async (t) => {
    const proc = await mkdtemp(path.join(tmpdir(), "cgproc-"));
    t.after(() => rm(proc, { recursive: true, force: true }));
    await mkdir(path.join(proc, "self"));
    await mkdir(path.join(proc, "42"));
    await writeFile(path.join(proc, "self", "mountinfo"), fixture("mountinfo-unified.txt"));
    await writeFile(path.join(proc, "42", "cgroup"), fixture("proc-cgroup-v2.txt"));
    assert.deepEqual(await loadCgroup(42, { proc }), { version: 2, dir: "/sys/fs/cgroup/default/ctr2" });
    assert.equal(await loadCgroup(43, { proc }), undefined);
  });

  void test("finds this process's own cgroup on this host", async () => {
    const cg = await loadCgroup(process.pid);
    assert.ok(cg !== undefined, "this host has cgroups mounted");
  });
});

void suite("cgroupfs values", () => {
  void test("parse numbers, 'max' and junk", () => {
    assert.equal(parseU64("42\n"), 42n);
    assert.equal(parseU64("max"), MAX_U64);
    assert.equal(parseU64("max", 0n), 0n);
    assert.equal(parseU64("-1"), undefined);
    assert.equal(parseU64(""), undefined);
    assert.deepEqual([...parseKeyValues("a 1\nb  2\nbad\nc x\n")], [["a", 1n], ["b", 2n]]);
  });

  void test("encode uint64 above 2^53 exactly", () => {
    for (const v of [MAX_U64, 9223372036854771712n, 2n ** 53n + 1n, 7n]) {
      const bytes = io.containerd.cgroups.v1.PidsStat.encode({ limit: u64(v) }).finish();
      let got = 0n;
      for (let i = bytes.length - 1; i >= 1; i--) got = (got << 7n) | BigInt((bytes[i] ?? 0) & 0x7f);
      assert.equal(bytes[0], 0x10);
      assert.equal(got, v);
    }
  });
});
