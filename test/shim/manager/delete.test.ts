import assert from "node:assert/strict";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { suite, test } from "node:test";
import { containerd, google } from "../../../src/gen/bootstrap.js";
import { hasMounts, readSavedOptions, runcDeleteArgs } from "../../../src/shim/manager/delete.js";
import { FEATURES_TYPE_URL } from "../../../src/shim/entry/info.js";
import { runShim, tempDir } from "../../helpers/shim.js";

/** A fake OCI runtime: records its argv (one per line) and answers `features`; exits with $FAKE_EXIT. */
function fakeRuntime(dir: string, exit = 0): { bin: string; argsFile: string } {
  const bin = path.join(dir, "fake-runc");
  const argsFile = path.join(dir, "fake-runc.args");
  writeFileSync(
    bin,
    `#!/bin/sh
printf '%s\\n' "$@" > ${JSON.stringify(argsFile)}
if [ "$1" = features ]; then echo '{"ociVersionMin":"1.0.0"}'; exit 0; fi
echo "container does not exist" >&2
exit ${exit}
`,
  );
  chmodSync(bin, 0o755);
  return { bin, argsFile };
}

void suite("shim delete", () => {
  void test("force-deletes with the saved runtime and root and prints a DeleteResponse", async (t) => {
    const dir = await tempDir(t, "shim-delete-");
    const bundle = path.join(dir, "c1");
    mkdirSync(bundle);
    const { bin, argsFile } = fakeRuntime(dir);
    writeFileSync(path.join(bundle, "options.json"), JSON.stringify({ binaryName: bin, root: "/run/r", systemdCgroup: true }));
    writeFileSync(path.join(bundle, "init.pid"), "4242");
    const before = Date.now();
    const r = await runShim(["-namespace", "ns", "-address", "/a", "-publish-binary", "/p", "-id", "c1", "-bundle", bundle, "delete"], {
      cwd: bundle,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    const res = containerd.task.v2.DeleteResponse.decode(r.stdout);
    assert.equal(res.pid, 4242);
    assert.equal(res.exitStatus, 137);
    const at = Number(res.exitedAt?.seconds ?? 0) * 1000;
    assert.ok(at >= before - 1000 && at <= Date.now() + 1000, "exited_at is now");
    assert.deepEqual(readFileSync(argsFile, "utf8").trim().split("\n"), [
      "--root", "/run/r/ns", "--log", path.join(bundle, "log.json"), "--log-format", "json", "--systemd-cgroup",
      "delete", "--force", "c1",
    ]);
  });

  void test("is idempotent: a failing runtime and an empty bundle still answer pid 0", async (t) => {
    const dir = await tempDir(t, "shim-delete-");
    const bundle = path.join(dir, "c2");
    mkdirSync(bundle);
    const { bin } = fakeRuntime(dir, 1);
    writeFileSync(path.join(bundle, "runtime"), bin);
    const args = ["-namespace", "ns", "-address", "/a", "-publish-binary", "/p", "-id", "c2", "-bundle", bundle, "delete"];
    for (let i = 0; i < 2; i++) {
      const r = await runShim(args, { cwd: bundle });
      assert.equal(r.code, 0);
      assert.match(r.stderr, /level=warning .*container does not exist/);
      const res = containerd.task.v2.DeleteResponse.decode(r.stdout);
      assert.equal(res.pid, 0);
      assert.equal(res.exitStatus, 137);
    }
  });

  void test("uses runc under /run/containerd/runc by default", () => {
    assert.deepEqual(runcDeleteArgs({}, "k8s.io", "/b", "id"), [
      "--root", "/run/containerd/runc/k8s.io", "--log", "/b/log.json", "--log-format", "json", "delete", "--force", "id",
    ]);
  });

  void test("reads options.json before the runtime file and survives bad JSON", async (t) => {
    const dir = await tempDir(t, "shim-delete-");
    writeFileSync(path.join(dir, "runtime"), "crun\n");
    assert.deepEqual(readSavedOptions(dir), { binaryName: "crun" });
    writeFileSync(path.join(dir, "options.json"), "{not json");
    assert.deepEqual(readSavedOptions(dir), { binaryName: "crun" });
    writeFileSync(path.join(dir, "options.json"), JSON.stringify({ binaryName: "runc", root: "/r" }));
    assert.deepEqual(readSavedOptions(dir), { binaryName: "runc", root: "/r" });
  });

  void test("finds mounts at and below rootfs only", () => {
    const info = [
      "36 35 98:0 / /mnt/b/rootfs rw - ext3 /dev/root rw",
      "37 35 98:0 / /mnt/b/rootfs2 rw - ext3 /dev/root rw",
      "38 35 98:0 / /mnt/c/rootfs/proc rw - proc proc rw",
      "39 35 98:0 / /mnt/d\\040x/rootfs rw - ext3 /dev/root rw",
    ].join("\n");
    assert.equal(hasMounts("/mnt/b/rootfs", info), true);
    assert.equal(hasMounts("/mnt/c/rootfs", info), true);
    assert.equal(hasMounts("/mnt/d x/rootfs", info), true);
    assert.equal(hasMounts("/mnt/b/root", info), false);
    assert.equal(hasMounts("/mnt/e/rootfs", info), false);
  });
});

void suite("shim -info and -v", () => {
  void test("-info prints RuntimeInfo with the runtime's features and the options echoed", async (t) => {
    const dir = await tempDir(t, "shim-info-");
    const { bin } = fakeRuntime(dir);
    const value = containerd.runc.v1.Options.encode({ binaryName: bin }).finish();
    const stdin = google.protobuf.Any.encode({ typeUrl: "containerd.runc.v1.Options", value }).finish();
    const r = await runShim(["-info"], { cwd: dir, stdin });
    assert.equal(r.code, 0, r.stderr);
    const info = containerd.types.RuntimeInfo.decode(r.stdout);
    assert.equal(info.name, "io.containerd.ts.v2");
    assert.match(info.version?.version ?? "", /^\d+\.\d+\.\d+/);
    assert.equal(info.options?.typeUrl, "containerd.runc.v1.Options");
    assert.equal(info.features?.typeUrl, FEATURES_TYPE_URL);
    assert.deepEqual(JSON.parse(Buffer.from(info.features?.value ?? []).toString("utf8")), { ociVersionMin: "1.0.0" });
  });

  void test("-v prints the name, version and the engine's version (Bun by default, Node with SHIM_TS_RUNTIME=node)", async (t) => {
    const dir = await tempDir(t, "shim-v-");
    const r = await runShim(["-v"], { cwd: dir });
    assert.equal(r.code, 0);
    const engine = process.env.SHIM_TS_RUNTIME === "node" ? "node v" : "bun ";
    assert.match(r.stdout.toString("utf8"), new RegExp(`^containerd-shim-ts-v2 \\d+\\.\\d+\\.\\d+\\n${engine}\\d+\\.`));
  });
});
