import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { suite, test } from "node:test";
import { jsonAnswer, parseContainerdMajor, probeTaskVersion } from "../../../src/shim/manager/version-probe.js";

void suite("version probe", () => {
  void test("reads containerd's major version from its --version line", () => {
    assert.equal(parseContainerdMajor("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n"), 1);
    assert.equal(parseContainerdMajor("containerd github.com/containerd/containerd/v2 2.1.9+unknown \n"), 2);
    assert.equal(parseContainerdMajor("containerd containerd.io v2.0.5 fb4c30d4ede3531652d86197bf3fc9515e5276d9\n"), 2);
    assert.equal(parseContainerdMajor("k3s version v1.30.1+k3s1"), 1);
    assert.equal(parseContainerdMajor("no version here"), undefined);
  });

  void test("formats the version answer containerd 2.0-2.2 parse", () => {
    assert.deepEqual(JSON.parse(jsonAnswer(3, "unix:///run/containerd/s/abc")), {
      version: 3,
      address: "unix:///run/containerd/s/abc",
      protocol: "ttrpc",
    });
  });
});

void suite("version probe cache", () => {
  /** A fake containerd at `dir/containerd` printing `version`, appending a line to `dir/runs` at each run. */
  function fakeContainerd(dir: string, version: string): string {
    const bin = path.join(dir, "containerd");
    writeFileSync(bin, `#!/bin/sh\necho run >> ${path.join(dir, "runs")}\necho "containerd github.com/containerd/containerd ${version} abc"\n`, { mode: 0o755 });
    return bin;
  }
  const runs = (dir: string): number => (existsSync(path.join(dir, "runs")) ? readFileSync(path.join(dir, "runs"), "utf8").split("\n").length - 1 : 0);

  void test("asks containerd once, and again only once its binary changed", async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), "vprobe-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const cache = path.join(dir, "cache");
    const bin = fakeContainerd(dir, "v2.1.9");
    assert.equal(await probeTaskVersion(bin, {}, cache), 3);
    assert.equal(await probeTaskVersion(bin, {}, cache), 3);
    // Before the cache every start ran containerd --version: 77 ms of CPU per pod.
    assert.equal(runs(dir), 1, "the second start read the cache");
    fakeContainerd(dir, "1.7.24"); // an upgrade (here a downgrade) in place
    assert.equal(await probeTaskVersion(bin, {}, cache), 2);
    assert.equal(await probeTaskVersion(bin, {}, cache), 2);
    assert.equal(runs(dir), 2);
  });

  void test("a cache it cannot use costs a probe, never the answer", async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), "vprobe-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const bin = fakeContainerd(dir, "2.1.9");
    const notADir = path.join(dir, "file");
    writeFileSync(notADir, "");
    assert.equal(await probeTaskVersion(bin, {}, notADir), 3);
    assert.equal(await probeTaskVersion(bin, {}, notADir), 3);
    assert.equal(runs(dir), 2);
    // A cache file of another binary's identity, or garbage, is not believed.
    const cache = path.join(dir, "cache");
    assert.equal(await probeTaskVersion(bin, {}, cache), 3);
    for (const f of readdirSync(cache)) writeFileSync(path.join(cache, f), "0:0:0:0:0 2\n");
    assert.equal(await probeTaskVersion(bin, {}, cache), 3);
    for (const f of readdirSync(cache)) writeFileSync(path.join(cache, f), "garbage");
    assert.equal(await probeTaskVersion(bin, {}, cache), 3);
    assert.equal(runs(dir), 5);
    assert.equal(await probeTaskVersion(path.join(dir, "missing"), {}, cache), 2, "no binary: version 2");
  });
});
