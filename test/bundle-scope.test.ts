// src/bundle-scope.ts: bundles must be direct children of containerd's bundle directories for the
// shim's namespace (or of the directory holding the daemon's own bundle), after resolving symlinks.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { suite, test, type TestContext } from "node:test";
import { BundleScope } from "../src/bundle-scope.js";
import { ShimError } from "../src/errdefs.js";

const TASKS = "io.containerd.runtime.v2.task";
const SANDBOXES = "io.containerd.sandbox.controller.v1.shim";

/** A fake containerd state dir with the daemon's own bundle `<state>/<plugin>/<ns>/<id>`. */
function layout(t: TestContext, plugin = TASKS) {
  const state = mkdtempSync(path.join(tmpdir(), "scope-"));
  t.after(() => rmSync(state, { recursive: true, force: true }));
  const dir = (...p: string[]) => {
    const d = path.join(state, ...p);
    mkdirSync(d, { recursive: true });
    return d;
  };
  const own = dir(plugin, "k8s.io", "pod1");
  return { state, own, dir, scope: BundleScope.forDaemon(own, "k8s.io") };
}

function refused(scope: BundleScope, bundle: string, why: RegExp): void {
  assert.throws(() => scope.check(bundle, 'task "x"'), (err: unknown) => {
    assert.ok(err instanceof ShimError, String(err));
    assert.equal(err.code, "InvalidArgument");
    assert.match(err.message, why);
    return true;
  }, bundle);
}

void suite("BundleScope", () => {
  void test("accepts task and sandbox bundles of the shim's namespace, as 1.6/1.7/2.x create them", (t) => {
    const { own, dir, scope } = layout(t);
    scope.check(own, "task pod1");
    scope.check(dir(TASKS, "k8s.io", "app1"), "task app1"); // a pod's app container (1.6, 1.7, 2.x)
    scope.check(dir(SANDBOXES, "k8s.io", "pod2"), "sandbox pod2"); // 2.x shim sandboxer
  });

  void test("a daemon started for a 2.x shim-sandboxer sandbox accepts its pod's task bundles", (t) => {
    const { dir, scope } = layout(t, SANDBOXES);
    scope.check(dir(TASKS, "k8s.io", "app1"), "task app1");
  });

  void test("accepts siblings of the daemon's own bundle in any layout (tests, non-default dirs)", (t) => {
    const root = mkdtempSync(path.join(tmpdir(), "scope-"));
    t.after(() => rmSync(root, { recursive: true, force: true }));
    const own = path.join(root, "bundles", "a");
    const other = path.join(root, "bundles", "b");
    mkdirSync(own, { recursive: true });
    mkdirSync(other);
    BundleScope.forDaemon(own, "default").check(other, "task b");
  });

  void test("refuses other namespaces, other state directories, the bundle roots themselves and deeper paths", (t) => {
    const { state, dir, scope } = layout(t);
    refused(scope, dir(TASKS, "other-ns", "x"), /outside containerd's bundle directories/);
    refused(scope, dir("runc", "k8s.io", "x"), /outside/);
    refused(scope, dir("s"), /outside/);
    refused(scope, path.join(state, TASKS, "k8s.io"), /outside/);
    refused(scope, dir(TASKS, "k8s.io", "x", "rootfs"), /outside/);
    refused(scope, state, /outside/);
    refused(scope, "/etc", /outside/);
    refused(scope, "/", /outside/);
  });

  void test("refuses .. escapes, relative paths, NUL, missing paths and files", (t) => {
    const { state, own, scope } = layout(t);
    const outside = path.join(state, "..", path.basename(state) + "-outside");
    mkdirSync(outside, { recursive: true });
    t.after(() => rmSync(outside, { recursive: true, force: true }));
    refused(scope, `${own}/../../../../${path.basename(outside)}`, /outside/);
    refused(scope, `${own}/../../../..`, /outside/);
    refused(scope, "k8s.io/pod1", /not an absolute path/);
    refused(scope, "", /not an absolute path/);
    refused(scope, `${own}\0`, /contains NUL/);
    refused(scope, path.join(path.dirname(own), "missing"), /cannot resolve it \(ENOENT\)/);
    const file = path.join(path.dirname(own), "file");
    writeFileSync(file, "");
    refused(scope, file, /not a directory/);
    // `..` that stays inside is fine: the real path counts.
    scope.check(`${own}/../pod1`, "task pod1");
  });

  void test("refuses a symlink in the bundle directory that leads out, accepts one that stays in", (t) => {
    const { own, dir, scope } = layout(t);
    const parent = path.dirname(own);
    const target = mkdtempSync(path.join(tmpdir(), "scope-target-"));
    t.after(() => rmSync(target, { recursive: true, force: true }));
    symlinkSync(target, path.join(parent, "evil"));
    refused(scope, path.join(parent, "evil"), /outside/);
    symlinkSync("/etc", path.join(parent, "etc"));
    refused(scope, path.join(parent, "etc"), /outside/);
    const real = dir(TASKS, "k8s.io", "real");
    symlinkSync(real, path.join(parent, "alias"));
    scope.check(path.join(parent, "alias"), "task alias");
  });

  void test("a symlinked state directory is resolved on both sides", (t) => {
    const { state, own } = layout(t);
    const link = `${state}-link`;
    symlinkSync(state, link);
    t.after(() => rmSync(link, { force: true }));
    const viaLink = path.join(link, TASKS, "k8s.io", "pod1");
    const scope = BundleScope.forDaemon(viaLink, "k8s.io");
    scope.check(own, "task pod1");
    scope.check(viaLink, "task pod1");
  });

  void test("a bundle root created after the daemon started is matched by its real path", (t) => {
    const { state, dir, scope } = layout(t);
    // The sandboxer's dir did not exist at start; it appears later as a symlink to elsewhere in state.
    const elsewhere = dir("moved", "k8s.io");
    symlinkSync(path.join(state, "moved"), path.join(state, SANDBOXES));
    mkdirSync(path.join(elsewhere, "sb"));
    scope.check(path.join(state, SANDBOXES, "k8s.io", "sb"), "sandbox sb");
  });
});
