import { test, before } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCode } from "../../src/errdefs.js";
import { MS, mount, mountAll, parseMountOptions, unmountRecursive } from "../../src/sys/index.js";
import { requireRoot } from "./util.js";

before(requireRoot);

/** Mount points at or under `dir`, from /proc/self/mountinfo. */
function mountsUnder(dir: string): Array<{ mp: string; opts: string; fstype: string }> {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const f = l.split(" ");
      const sep = f.indexOf("-");
      return { mp: f[4] ?? "", opts: f[5] ?? "", fstype: f[sep + 1] ?? "" };
    })
    .filter((m) => m.mp === dir || m.mp.startsWith(dir + "/"));
}

function withTempDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "sys-mount-"));
  try {
    fn(dir);
  } finally {
    unmountRecursive(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

test("parseMountOptions maps flags, propagation and data", () => {
  assert.deepEqual(parseMountOptions(["rbind", "ro", "nosuid", "nodev", "noexec", "rprivate", "mode=755", "size=1m"]), {
    flags: MS.BIND | MS.REC | MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC,
    data: "mode=755,size=1m",
    propagation: [MS.PRIVATE | MS.REC],
  });
  assert.equal(parseMountOptions(["ro", "rw"]).flags, 0);
  assert.equal(parseMountOptions(["remount", "relatime", "sync", "dirsync"]).flags,
    MS.REMOUNT | MS.RELATIME | MS.SYNCHRONOUS | MS.DIRSYNC);
  assert.equal(parseMountOptions(["noatime", "strictatime"]).flags, MS.NOATIME | MS.STRICTATIME);
  assert.deepEqual(parseMountOptions(["shared", "rslave", "unbindable", "runbindable", "private", "rshared", "slave"]).propagation,
    [MS.SHARED, MS.SLAVE | MS.REC, MS.UNBINDABLE, MS.UNBINDABLE | MS.REC, MS.PRIVATE, MS.SHARED | MS.REC, MS.SLAVE]);
  assert.deepEqual(parseMountOptions([]), { flags: 0, data: "", propagation: [] });
});

test("tmpfs and a read-only bind under a temp dir; unmountRecursive removes both", () => {
  withTempDir((dir) => {
    const a = join(dir, "a");
    mkdirSync(a);
    mount("tmpfs", a, "tmpfs", MS.NOSUID, "size=1m,mode=755");
    mkdirSync(join(a, "b"));
    writeFileSync(join(a, "b", "f"), "data");
    const c = join(a, "c");
    mkdirSync(c);
    mount(join(a, "b"), c, "none", MS.BIND | MS.RDONLY, "");
    assert.equal(readFileSync(join(c, "f"), "utf8"), "data");
    assert.throws(() => writeFileSync(join(c, "g"), "x"), /EROFS/);
    assert.deepEqual(mountsUnder(dir).map((m) => m.mp), [a, c]);
    assert.match(mountsUnder(dir)[1]?.opts ?? "", /^ro\b/);
    unmountRecursive(dir);
    assert.deepEqual(mountsUnder(dir), []);
    unmountRecursive(dir); // nothing left: no error
    unmountRecursive(join(dir, "missing")); // absent target: no error
  });
});

test("unmountRecursive detaches a busy mount and handles stacked mounts", () => {
  withTempDir((dir) => {
    mount("tmpfs", dir, "tmpfs", 0, "size=1m");
    mount("tmpfs", dir, "tmpfs", 0, "size=1m"); // stacked on the same point
    const sub = join(dir, "sub");
    mkdirSync(sub);
    mount("tmpfs", sub, "tmpfs", 0, "size=1m");
    assert.equal(mountsUnder(dir).length, 3);
    process.chdir(sub); // makes `sub` busy
    try {
      unmountRecursive(dir);
    } finally {
      process.chdir("/");
    }
    assert.deepEqual(mountsUnder(dir), []);
  });
});

test("mountAll applies bind, tmpfs and overlay onto a rootfs in order, rolling back on failure", () => {
  withTempDir((dir) => {
    const rootfs = join(dir, "rootfs");
    const [lower, upper, work, src] = ["lower", "upper", "work", "src"].map((n) => join(dir, n)) as [string, string, string, string];
    for (const d of [rootfs, lower, upper, work, src]) mkdirSync(d);
    mkdirSync(join(lower, "etc"));
    mkdirSync(join(lower, "mnt"));
    writeFileSync(join(lower, "etc", "hostname"), "lower");
    writeFileSync(join(src, "shared"), "bound");
    mountAll([
      { type: "overlay", source: "overlay", target: "", options: [`lowerdir=${lower}`, `upperdir=${upper}`, `workdir=${work}`] },
      { type: "tmpfs", source: "tmpfs", target: "/tmp", options: ["nosuid", "size=1m"] },
      { type: "bind", source: src, target: "mnt", options: ["rbind", "ro"] },
    ], rootfs);
    assert.equal(readFileSync(join(rootfs, "etc", "hostname"), "utf8"), "lower");
    writeFileSync(join(rootfs, "etc", "hostname"), "upper");
    assert.equal(readFileSync(join(upper, "etc", "hostname"), "utf8"), "upper");
    assert.equal(readFileSync(join(rootfs, "mnt", "shared"), "utf8"), "bound");
    assert.throws(() => writeFileSync(join(rootfs, "mnt", "x"), "x"), /EROFS/);
    assert.deepEqual(mountsUnder(rootfs).map((m) => m.mp), [rootfs, join(rootfs, "tmp"), join(rootfs, "mnt")]);
    assert.deepEqual(mountsUnder(rootfs).slice(0, 2).map((m) => m.fstype), ["overlay", "tmpfs"]);
    unmountRecursive(rootfs);
    assert.deepEqual(mountsUnder(rootfs), []);

    assert.throws(() => mountAll([{ type: "bind", source: src, target: "../escape", options: ["bind"] }], rootfs),
      (e: unknown) => isCode(e, "InvalidArgument"));
    symlinkSync(dir, join(rootfs, "link"));
    assert.throws(() => mountAll([{ type: "bind", source: src, target: "link/x", options: ["bind"] }], rootfs),
      (e: unknown) => isCode(e, "InvalidArgument"));
    assert.ok(!existsSync(join(dir, "x")), "nothing created outside the rootfs");
    // The second mount fails (no such source): the first is unmounted again.
    assert.throws(() => mountAll([
      { type: "tmpfs", source: "tmpfs", target: "", options: [] },
      { type: "bind", source: join(dir, "nonexistent"), target: "", options: ["bind"] },
    ], rootfs), (e: unknown) => isCode(e, "NotFound") && /ENOENT/.test(String(e)));
    assert.deepEqual(mountsUnder(rootfs), []);
  });
});

test("mountAll shortens overlay options longer than a page minus 512 bytes", () => {
  withTempDir((dir) => {
    const rootfs = join(dir, "rootfs");
    const snaps = join(dir, "io.containerd.snapshotter.v1.overlayfs", "snapshots");
    const lowers: string[] = [];
    for (let i = 0; i < 60; i++) {
      const l = join(snaps, String(1000 + i), "fs");
      mkdirSync(l, { recursive: true });
      writeFileSync(join(l, `layer${i}`), String(i));
      lowers.push(l);
    }
    for (const d of [rootfs, join(dir, "upper"), join(dir, "work")]) mkdirSync(d);
    const options = [`lowerdir=${lowers.join(":")}`, `upperdir=${join(dir, "upper")}`, `workdir=${join(dir, "work")}`];
    assert.ok(options.join(",").length > 4096, "options exceed a page");
    mountAll([{ type: "overlay", source: "overlay", options }], rootfs);
    assert.equal(readFileSync(join(rootfs, "layer0"), "utf8"), "0");
    assert.equal(readFileSync(join(rootfs, "layer59"), "utf8"), "59");
    unmountRecursive(rootfs);
    assert.ok(!existsSync(join(rootfs, "layer0")));
  });
});
