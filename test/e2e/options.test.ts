// Runtime options through ctr: ctr sends `runtimeoptions.v1.Options{config_path}` for
// `--runtime-config-path` (all versions; `--runc-binary` is refused for runtimes not named
// io.containerd.runc.v2), and task options for --no-pivot / --uidmap (1.6/1.7: linux.runc.CreateOptions,
// 2.1: runc.v1.Options).
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { BUSYBOX_REF, RUNTIME, assertNoLeftovers, ctrOk, deleteTask, describe, perVersion, waitStatus } from "../helpers/ctr.js";
import { containerProcesses } from "../helpers/containerd.js";
import type { Containerd } from "../helpers/containerd.js";
import { waitFor } from "../helpers/wait.js";

const OURS = RUNTIME === "io.containerd.ts.v2";

/** Pids whose cgroup (any hierarchy) is exactly `cg`. */
function pidsInCgroup(cg: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if ((readFileSync(`/proc/${name}/cgroup`, "utf8") + "\n").includes(`:${cg}\n`)) out.push(Number(name));
    } catch { /* gone */ }
  }
  return out;
}

/** Writes an executable script into the containerd's temp dir. */
function script(c: Containerd, name: string, body: string): string {
  const file = path.join(c.dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

function configFile(c: Containerd, name: string, toml: string): string {
  const file = path.join(c.dir, name);
  writeFileSync(file, toml);
  return file;
}

const run = (cfg: string, id: string, cmd: string[], extra: string[] = []) =>
  ["run", "--runtime", RUNTIME, "--runtime-config-path", cfg, ...extra, BUSYBOX_REF, id, ...cmd];

perVersion("runtime options", (get) => {
  void test("binary_name = crun runs, lists, pauses and deletes a container", { skip: !OURS && "our shim only" }, async () => {
    const c = get();
    // crun 1.8 refuses this host's hybrid cgroup layout (hugetlb sits on cgroup2 at /sys/fs/cgroup/unified);
    // the wrapper hides that mount in a private mount namespace, so crun runs on the v1 hierarchies.
    const crun = script(c, "crun-v1", `exec unshare -m sh -c 'umount /sys/fs/cgroup/unified && exec crun "$@"' crun "$@"`);
    const root = path.join(c.dir, "crun-root");
    const cfg = configFile(c, "crun.toml", `BinaryName = "${crun}"\nRoot = "${root}"\n`);
    const once = await c.ctr(run(cfg, "cr1", ["sh", "-c", "echo via-crun; exit 3"], ["--rm"]));
    if (c.version !== "1.6") {
      // crun 1.8.1 accepts only runtime-spec 1.0.x; ctr 1.7 writes ociVersion 1.1.0 and 2.1 writes 1.2.x.
      // crun's own error, read from its log, is what the client sees.
      assert.match(once.stderr, /create failed: unknown version specified/, describe(c, "ctr run with crun", once));
      await c.ctr(["container", "delete", "cr1"]);
      await assertNoLeftovers(c, "cr1");
      return;
    }
    assert.equal(once.stdout, "via-crun\n", describe(c, "ctr run with crun", once));
    assert.equal(once.code, 3, describe(c, "ctr run with crun", once));
    await ctrOk(c, run(cfg, "cr2", ["sleep", "1000"], ["-d"]));
    await waitStatus(c, "cr2", "RUNNING");
    assert.ok(existsSync(path.join(root, c.namespace, "cr2", "status")), "crun's own state file under <Root>/<ns>");
    const ps = await ctrOk(c, ["task", "ps", "cr2"]);
    assert.equal(ps.stdout.split("\n").filter((l) => /^\s*\d+/.test(l)).length, 1, describe(c, "ctr task ps", ps));
    await ctrOk(c, ["task", "pause", "cr2"]);
    await waitStatus(c, "cr2", "PAUSED");
    await ctrOk(c, ["task", "resume", "cr2"]);
    await ctrOk(c, ["task", "kill", "-s", "SIGKILL", "cr2"]);
    await waitStatus(c, "cr2", "STOPPED");
    assert.equal(await deleteTask(c, "cr2"), 137);
    await ctrOk(c, ["container", "delete", "cr2"]);
    await assertNoLeftovers(c, "cr2");
  });

  void test("root, no_pivot_root and no_new_keyring reach the runtime's command line", { skip: !OURS && "our shim only" }, async () => {
    const c = get();
    const log = path.join(c.dir, "rec.log");
    const rec = script(c, "rec-runc", `echo "$*" >> ${log}\nexec runc "$@"`);
    const root = path.join(c.dir, "runc-root");
    const cfg = configFile(c, "rec.toml", `BinaryName = "${rec}"\nRoot = "${root}"\nNoPivotRoot = true\nNoNewKeyring = true\n`);
    const r = await c.ctr(run(cfg, "rr1", ["echo", "pivotless"], ["--rm"]));
    assert.equal(r.stdout, "pivotless\n", describe(c, "ctr run", r));
    const create = readFileSync(log, "utf8").split("\n").find((l) => / create /.test(l)) ?? "";
    assert.match(create, new RegExp(`^--root ${root}/${c.namespace} .* create .*--no-pivot --no-new-keyring rr1$`));
    await assertNoLeftovers(c, "rr1");
  });

  void test("ctr --no-pivot (task options: CreateOptions on 1.6/1.7, runc Options on 2.1) reaches runc create", { skip: !OURS && "our shim only" }, async () => {
    const c = get();
    const r = await c.ctr(["run", "--runtime", RUNTIME, "--rm", "--no-pivot", BUSYBOX_REF, "np1", "echo", "ok"]);
    assert.equal(r.stdout, "ok\n", describe(c, "ctr run --no-pivot", r));
    // The shim logs each runc argv at debug level into containerd's log (the harness runs containerd with debug).
    const created = (await c.logs()).split("\n").filter((l) => l.includes('msg="runc call"') && / create .* np1"/.test(l));
    assert.equal(created.length, 1, c.logTail(20));
    assert.match(created[0]!, / --no-pivot np1"/);
    await assertNoLeftovers(c, "np1");
  });

  void test("--uidmap/--gidmap give io_uid/io_gid: the container's stdio pipes belong to the mapped root", async () => {
    const c = get();
    // The mapped root must be able to reach the bundle's rootfs below the (0700) temp dir.
    chmodSync(c.dir, 0o711);
    const args = ["run", "--runtime", RUNTIME, "-d", "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536", BUSYBOX_REF, "un1", "sleep", "1000"];
    await ctrOk(c, args);
    await waitStatus(c, "un1", "RUNNING");
    const pid = await waitFor(() => containerProcesses(c.namespace, "un1")[0], { what: "the container's process" });
    const out = statSync(`/proc/${pid}/fd/1`);
    assert.deepEqual([out.uid, out.gid], [100000, 100000], "stdout pipe owner");
    await ctrOk(c, ["task", "kill", "-s", "SIGKILL", "un1"]);
    await waitStatus(c, "un1", "STOPPED");
    await deleteTask(c, "un1");
    await ctrOk(c, ["container", "delete", "un1"]);
    await assertNoLeftovers(c, "un1");
  });

  void test("shim_cgroup from the config file places the shim (best effort)", { skip: !OURS && "our shim only" }, async () => {
    const c = get();
    const cg = `/ts-e2e-shim-${path.basename(c.dir)}`;
    const cfg = configFile(c, "shimcg.toml", `ShimCgroup = "${cg}"\n`);
    // As with containerd's runc shim, the cgroup must exist already.
    for (const ctl of ["memory", "pids", "cpu"]) mkdirSync(path.join("/sys/fs/cgroup", ctl, cg));
    await ctrOk(c, run(cfg, "sc1", ["sleep", "1000"], ["-d"]));
    await waitStatus(c, "sc1", "RUNNING");
    // The daemon's comm is its runtime's: node, or bun with SHIM_TS_RUNTIME=bun.
    const shims = await waitFor(() => pidsInCgroup(cg).filter((p) => /node|bun/.test(readFileSync(`/proc/${p}/comm`, "utf8"))),
      { what: `the shim in cgroup ${cg}` }).catch(() => []);
    assert.ok(shims.length >= 1, `a node or bun process (the shim) in ${cg}\n${c.logTail(20)}`);
    await ctrOk(c, ["task", "kill", "-s", "SIGKILL", "sc1"]);
    await waitStatus(c, "sc1", "STOPPED");
    await deleteTask(c, "sc1");
    await ctrOk(c, ["container", "delete", "sc1"]);
    await assertNoLeftovers(c, "sc1");
    await waitFor(() => pidsInCgroup(cg).length === 0, { what: `cgroup ${cg} to empty` });
    for (const ctl of readdirSync("/sys/fs/cgroup")) {
      try { rmdirSync(path.join("/sys/fs/cgroup", ctl, cg)); } catch { /* not created under this hierarchy */ }
    }
  });

  void test("systemd_cgroup on a host without systemd fails with a clear error", { skip: (!OURS || existsSync("/run/systemd/system")) && "needs our shim on a host without systemd" }, async () => {
    const c = get();
    const cfg = configFile(c, "systemd.toml", "SystemdCgroup = true\n");
    const r = await c.ctr(run(cfg, "sd1", ["true"], ["--rm"]));
    assert.notEqual(r.code, 0, describe(c, "ctr run", r));
    assert.match(r.stderr, /systemd_cgroup: systemd is not running on this host/, describe(c, "ctr run", r));
    await c.ctr(["container", "delete", "sd1"]);
    await assertNoLeftovers(c, "sd1");
  });

  void test("a runtime config file that cannot be read is InvalidArgument naming the file", { skip: !OURS && "our shim only" }, async () => {
    const c = get();
    const r = await c.ctr(run(path.join(c.dir, "missing.toml"), "mf1", ["true"], ["--rm"]));
    assert.notEqual(r.code, 0, describe(c, "ctr run", r));
    assert.match(r.stderr, /Cannot read shim config file ".*missing\.toml": ENOENT/, describe(c, "ctr run", r));
    await c.ctr(["container", "delete", "mf1"]);
    await assertNoLeftovers(c, "mf1");
  });
});
