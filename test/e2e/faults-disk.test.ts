// A full disk where the shim writes (issue 10, item 3), through ctr on 1.6/1.7/2.1. Small tmpfs mounts, filled
// with zeros until ENOSPC, stand for: the runc root (the runtime's Root option), the daemon's temp dir (TMPDIR,
// where the process spec of an exec goes), and the bundles' filesystem, filled just before `start` (it cannot
// write <bundle>/address) or just after it (Create cannot write options.json; test/fixtures/fill-shim). Each
// time: a clear error naming the lack of space, nothing of the failed container left, a container running
// elsewhere unharmed, and once space is freed the same id runs.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, suite, test, type TestContext } from "node:test";
import { RUNTIME, SHIM_BINARY, VERSIONS, startContainerd, type Containerd, type ContainerdVersion, type CtrResult } from "../helpers/containerd.js";
import { assertNoLeftovers, ctrOk, deleteTask, describe, runArgs, taskStatus, waitStatus } from "../helpers/ctr.js";
import { FaultRunc, OURS, assertGone } from "../helpers/faults.js";
import { REPO_ROOT, busyboxImageTar } from "../helpers/image.js";
import { shimBinaryName } from "../helpers/cri.js";

const ENOSPC = /no space left on device/i;

function mountTmpfs(dir: string, size: string): void {
  mkdirSync(dir, { recursive: true });
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0755`, "tmpfs", dir]);
}

/** Fills the filesystem of `dir` until ENOSPC (into `dir`/.fill). */
function fill(dir: string): void {
  try { execFileSync("dd", ["if=/dev/zero", `of=${path.join(dir, ".fill")}`, "bs=4096"], { stdio: "ignore" }); } catch { /* ENOSPC ends dd */ }
}

function diskSuite(v: ContainerdVersion): void {
  void suite(`a full disk where the shim writes (containerd ${v}, ${RUNTIME})`, { timeout: 180_000 }, () => {
    let c: Containerd | undefined;
    const tmp = mkdtempSync("/tmp/faults-tmpdir-");
    const get = (): Containerd => c ?? assert.fail(`containerd ${v} did not start`);

    before(async () => {
      mountTmpfs(tmp, "8m");
      c = await startContainerd(v, { env: { TMPDIR: tmp } });
      // Before any container: containerd caches where it found a shim binary.
      installFillShim(c);
      await ctrOk(c, runArgs("bystander", ["sleep", "100000"], { detach: true }));
      await waitStatus(c, "bystander", "RUNNING");
    });
    after(async () => {
      try {
        if (c) {
          await ctrOk(c, ["task", "kill", "-s", "SIGKILL", "bystander"]);
          await waitStatus(c, "bystander", "STOPPED");
          assert.equal(await deleteTask(c, "bystander"), 137);
          await ctrOk(c, ["container", "delete", "bystander"]);
          await assertNoLeftovers(c, "bystander");
        }
      } finally {
        await c?.stop();
        try { execFileSync("umount", ["-l", tmp]); } catch { /* not mounted */ }
        rmSync(tmp, { recursive: true, force: true });
      }
    });

    const bystanderFine = async (what: string) => {
      assert.equal(await taskStatus(get(), "bystander"), "RUNNING", `${what}: the other container`);
    };

    void test("a full runc root: Create fails naming the lack of space; nothing is left; after freeing space it runs", async (t: TestContext) => {
      const cd = get();
      const rootDir = path.join(cd.dir, "runc-root");
      mountTmpfs(rootDir, "64k");
      fill(rootDir);
      const runc = new FaultRunc(path.join(cd.dir, "root-runc"), { root: rootDir });
      const args = ["run", "--runtime", RUNTIME, ...runc.ctrOptions(), "-d", "docker.io/library/busybox:ts-test", "r1", "sleep", "100000"];
      const r = await cd.ctr(args);
      t.diagnostic(`error: ${r.stderr.trim().replace(/\s+/g, " ").slice(-300)}`);
      assert.notEqual(r.code, 0, describe(cd, "ctr run with a full runc root", r));
      // runc 1.1.5 words it "unable to store init state: %!w(<nil>)" (its own formatting bug), and the shim passes it on.
      assert.match(r.stderr, /no space left on device|unable to store init state/, describe(cd, "ctr run with a full runc root", r));
      await ctrOk(cd, ["container", "delete", "r1"]);
      await assertGone(cd, cd.namespace, "r1", path.join(rootDir, cd.namespace));
      await bystanderFine("full runc root");
      rmSync(path.join(rootDir, ".fill"));
      await ctrOk(cd, args);
      await waitStatus(cd, "r1", "RUNNING");
      await ctrOk(cd, ["task", "kill", "-s", "SIGKILL", "r1"]);
      await waitStatus(cd, "r1", "STOPPED");
      assert.equal(await deleteTask(cd, "r1"), 137);
      await ctrOk(cd, ["container", "delete", "r1"]);
      await assertGone(cd, cd.namespace, "r1", path.join(rootDir, cd.namespace));
      execFileSync("umount", [rootDir]);
    });

    void test("a full temp dir: an exec fails naming the lack of space, leaves no spec file, and the container goes on", async (t: TestContext) => {
      const cd = get();
      await ctrOk(cd, runArgs("x1", ["sleep", "100000"], { detach: true }));
      await waitStatus(cd, "x1", "RUNNING");
      fill(tmp);
      const r = await cd.ctr(["task", "exec", "--exec-id", "e1", "x1", "true"]);
      t.diagnostic(`error: ${r.stderr.trim().replace(/\s+/g, " ").slice(-300)}`);
      assert.notEqual(r.code, 0, describe(cd, "exec with a full temp dir", r));
      assert.match(r.stderr, ENOSPC, describe(cd, "exec with a full temp dir", r));
      if (OURS) assert.match(r.stderr, new RegExp(`process file "${tmp}/runc-process`), "the error names the file");
      assert.deepEqual(readdirSync(tmp).filter((f) => f.startsWith("runc-process")), [], "no process spec file left");
      assert.equal(await taskStatus(cd, "x1"), "RUNNING");
      rmSync(path.join(tmp, ".fill"));
      const ok = await ctrOk(cd, ["task", "exec", "--exec-id", "e2", "x1", "echo", "again"]);
      assert.equal(ok.stdout, "again\n");
      await ctrOk(cd, ["task", "kill", "-s", "SIGKILL", "x1"]);
      await waitStatus(cd, "x1", "STOPPED");
      assert.equal(await deleteTask(cd, "x1"), 137);
      await ctrOk(cd, ["container", "delete", "x1"]);
      await assertGone(cd, cd.namespace, "x1");
      await bystanderFine("full temp dir");
    });

    for (const when of ["before", "after"] as const) {
      void test(`bundles on a disk that fills ${when} start: a clear error, no daemon, socket, mount or bundle left`, async (t: TestContext) => {
        const cd = get();
        const ns = `full-${when}`;
        const nsDir = path.join(cd.state, "io.containerd.runtime.v2.task", ns);
        await cd.ctr(["images", "import", "--all-platforms", await busyboxImageTar()], { ns, timeoutMs: 60_000 });
        mountTmpfs(nsDir, "1m");
        const wrapper = installFillShim(cd);
        // containerd writes shim-binary-path after start, 2.x bootstrap.json as well (each a page).
        writeFileSync(`${wrapper}.fill`, `${when} ${nsDir} ${v === "2.1" ? 2 : 1}\n`);
        const id = `b-${when}`;
        let r: CtrResult;
        try {
          r = await cd.ctr(runArgs(id, ["sleep", "100000"], { detach: true }), { ns });
        } finally {
          rmSync(`${wrapper}.fill`);
        }
        t.diagnostic(`error: ${r.stderr.trim().replace(/\s+/g, " ").slice(-300)}`);
        assert.notEqual(r.code, 0, describe(cd, `ctr run, disk full ${when} start`, r));
        assert.match(r.stderr, ENOSPC, describe(cd, `ctr run, disk full ${when} start`, r));
        const file = path.join(nsDir, id, when === "before" ? "address" : "options.json");
        if (OURS) assert.ok(r.stderr.includes(`Cannot write "${file}"`), `the error names ${file}: ${r.stderr}`);
        await assertGone(cd, ns, id);
        await bystanderFine(`disk full ${when} start`);
        rmSync(path.join(nsDir, ".fill"));
        const d = await cd.ctr(["container", "delete", id], { ns });
        assert.equal(d.code, 0, describe(cd, `ctr container delete ${id}`, d));
        const again = await cd.ctr(runArgs(id, ["sh", "-c", "exit 3"]), { ns });
        assert.equal(again.code, 3, describe(cd, `ctr run ${id} once space is free`, again));
        await assertGone(cd, ns, id);
        execFileSync("umount", [nsDir]);
      });
    }
  });
}

/** Puts test/fixtures/fill-shim in place of the runtime's shim on containerd's PATH; returns its path. */
function installFillShim(c: Containerd): string {
  const name = shimBinaryName();
  const wrapper = path.join(c.dir, "bin", name);
  if (existsSync(`${wrapper}.real`)) return wrapper;
  const suites = { "1.6": "bookworm", "1.7": "trixie", "2.1": "sid" } as const;
  const real = RUNTIME === "io.containerd.ts.v2" ? SHIM_BINARY : path.join(REPO_ROOT, ".deps", "containerd", suites[c.version], "usr", "bin", name);
  rmSync(wrapper, { force: true });
  symlinkSync(path.join(REPO_ROOT, "test", "fixtures", "fill-shim"), wrapper);
  writeFileSync(`${wrapper}.real`, `${real}\n`);
  return wrapper;
}

for (const v of VERSIONS) diskSuite(v);
