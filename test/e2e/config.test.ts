// The shim config file (README "Shim config file") through containerd: named by `ctr run
// --runtime-config-path` (runtimeoptions.v1.Options{config_path}) and by a CRI runtime's `options`
// table (`ConfigPath`), with containerd at log level info so that the shim gets no -debug of its own.
import assert from "node:assert/strict";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { after, before, suite, test } from "node:test";
import { RUNTIME, VERSIONS, startContainerd, type Containerd, type ContainerdVersion } from "../helpers/containerd.js";
import { CRI_NS, CriClient, hostNetworkPod, shimDaemons } from "../helpers/cri.js";
import { BUSYBOX_REF, assertNoLeftovers, describe, perVersion } from "../helpers/ctr.js";
import { waitFor } from "../helpers/wait.js";

const OURS = RUNTIME === "io.containerd.ts.v2";
const skip = !OURS && "our shim only";

function write(c: Containerd, name: string, text: string, mode = 0o644): string {
  const file = path.join(c.dir, name);
  writeFileSync(file, text);
  chmodSync(file, mode);
  return file;
}

/** A runc wrapper that appends its argv to `<name>.log`. */
function recordingRunc(c: Containerd, name: string): { bin: string; calls: () => string[] } {
  const log = path.join(c.dir, `${name}.log`);
  const bin = write(c, name, `#!/bin/sh\necho "$*" >> ${log}\nexec runc "$@"\n`, 0o755);
  return { bin, calls: () => { try { return readFileSync(log, "utf8").split("\n").filter(Boolean); } catch { return []; } } };
}

/** containerd's log lines that our shim wrote for container `id` (the shim's lines carry runtime= and id=). */
async function shimLines(c: Containerd, id: string): Promise<string[]> {
  return (await c.logs()).split("\n").filter((l) => l.includes("runtime=io.containerd.ts.v2") && l.includes(` id=${id}`));
}

const run = (cfg: string, id: string, cmd: string[]) =>
  ["run", "--runtime", RUNTIME, "--runtime-config-path", cfg, "--rm", BUSYBOX_REF, id, ...cmd];

perVersion("shim config file (ctr)", (get) => {
  void test("an unknown key is refused at Create, naming the key and the file", { skip }, async () => {
    const c = get();
    const cfg = write(c, "bad.toml", '# typo\ngrouping_mode = "namespace"\n');
    const r = await c.ctr(run(cfg, "bk1", ["true"]));
    assert.notEqual(r.code, 0, describe(c, "ctr run", r));
    assert.match(r.stderr, new RegExp(`${cfg.replace(/\./g, "\\.")}: unknown key "grouping_mode" \\(line 2\\)`), describe(c, "ctr run", r));
    // ctr shows only the message; that the code is InvalidArgument is checked on the daemon itself
    // (test/shim/config/config.test.ts), and by containerd's own wording where it adds one.
    await c.ctr(["container", "delete", "bk1"]);
    await assertNoLeftovers(c, "bk1");
  });

  void test("a bad value is refused the same way", { skip }, async () => {
    const c = get();
    const cfg = write(c, "badv.toml", 'grouping = "node"\n');
    const r = await c.ctr(run(cfg, "bv1", ["true"]));
    assert.notEqual(r.code, 0, describe(c, "ctr run", r));
    assert.match(r.stderr, new RegExp(`${cfg.replace(/\./g, "\\.")}: key "grouping" \\(line 1\\): "node" is not one of "pod", "namespace"`), describe(c, "ctr run", r));
    await c.ctr(["container", "delete", "bv1"]);
    await assertNoLeftovers(c, "bv1");
  });

  void test("`runtime` names the OCI runtime binary (a runc wrapper is used for every call)", { skip }, async () => {
    const c = get();
    const rec = recordingRunc(c, "wrap-runc");
    const cfg = write(c, "runtime.toml", `runtime = "${rec.bin}"\n`);
    const r = await c.ctr(run(cfg, "rt1", ["echo", "wrapped"]));
    assert.equal(r.stdout, "wrapped\n", describe(c, "ctr run", r));
    const calls = rec.calls();
    for (const verb of ["create", "start", "delete"]) {
      assert.ok(calls.some((l) => new RegExp(` ${verb} .*rt1$`).test(l)), `runc ${verb} through the wrapper:\n${calls.join("\n")}`);
    }
    await assertNoLeftovers(c, "rt1");
  });

  void test("log_level = \"debug\" puts the shim's debug lines into containerd's log (info level otherwise)", { skip }, async () => {
    const c = get();
    // A daemon keeps the log level of the `start` that spawned it. With namespace grouping each run must get its
    // own, so none may linger for the next run to join (linger_ms, docs/grouping.md); pod grouping ignores it.
    const plain = write(c, "plain.toml", "# nothing set but no linger\nlinger_ms = 0\n");
    const r0 = await c.ctr(run(plain, "ll0", ["true"]));
    assert.equal(r0.code, 0, describe(c, "ctr run", r0));
    const debug = write(c, "debug.toml", 'log_level = "debug"\nlinger_ms = 0\n');
    const r1 = await c.ctr(run(debug, "ll1", ["true"]));
    assert.equal(r1.code, 0, describe(c, "ctr run", r1));
    const warn = write(c, "warn.toml", 'log_level = "warn"\nlinger_ms = 0\n');
    const r2 = await c.ctr(run(warn, "ll2", ["true"]));
    assert.equal(r2.code, 0, describe(c, "ctr run", r2));
    // The daemon logs "shim serving" at info when it is up; the runc calls at debug.
    await waitFor(async () => (await shimLines(c, "ll1")).some((l) => l.includes('msg="runc call"')), { what: "debug lines of ll1" })
      .catch(() => undefined);
    const [l0, l1, l2] = [await shimLines(c, "ll0"), await shimLines(c, "ll1"), await shimLines(c, "ll2")];
    assert.ok(l0.some((l) => l.includes('msg="shim serving"')), `info lines without log_level:\n${l0.join("\n")}\n${c.logTail(20)}`);
    assert.ok(!l0.some((l) => l.includes("level=debug")), `no debug lines without log_level:\n${l0.join("\n")}`);
    assert.ok(l1.some((l) => l.includes("level=debug") && l.includes('msg="runc call"')), `debug lines with log_level = "debug":\n${l1.join("\n")}`);
    assert.ok(!l2.some((l) => /level=(debug|info)/.test(l)), `only warnings and errors with log_level = "warn":\n${l2.join("\n")}`);
    for (const id of ["ll0", "ll1", "ll2"]) await assertNoLeftovers(c, id);
  });
  // The files' linger_ms decides, not the lane's SHIM_TS_LINGER_MS (scripts/test.sh), which wins over them.
}, { logLevel: "info", env: { SHIM_TS_LINGER_MS: "" } });

// CRI: the runtime's `options` table names the file with ConfigPath (containerd then sends only that path).
function criSuite(v: ContainerdVersion): void {
  void suite(`shim config file through a CRI runtime's ConfigPath (containerd ${v}, ${RUNTIME})`, { timeout: 240_000, skip }, () => {
    let c: Containerd | undefined;
    let client: CriClient | undefined;
    const get = (): Containerd => { if (!c) throw new Error(`containerd ${v} did not start`); return c; };
    let cfg = "";
    before(async () => {
      const dir = `/tmp/ts-e2e-config-${process.pid}-${v.replace(".", "")}`;
      await mkdir(dir, { recursive: true });
      cfg = path.join(dir, "shim.toml");
      // The README's examples: `version = 2` for 1.6/1.7, `version = 3` for 2.x.
      const plugin = v === "2.1" ? `plugins."io.containerd.cri.v1.runtime"` : `plugins."io.containerd.grpc.v1.cri"`;
      const extraConfig = `[${plugin}.containerd.runtimes.tscfg]\n  runtime_type = "io.containerd.ts.v2"\n` +
        `[${plugin}.containerd.runtimes.tscfg.options]\n  ConfigPath = ${JSON.stringify(cfg)}\n`;
      c = await startContainerd(v, { cri: true, namespace: CRI_NS, images: ["pause"], extraConfig, logLevel: "info" });
      client = await CriClient.connect(c.address);
    });
    after(async () => {
      client?.close();
      await c?.stop();
      if (cfg !== "") await import("node:fs/promises").then((fs) => fs.rm(path.dirname(cfg), { recursive: true, force: true }));
    });

    void test("refuses a bad key at the pod's Create, naming the key and the file, and leaves no shim", async () => {
      writeFileSync(cfg, 'runtime_flag = ["--max-old-space-size=64"]\n');
      const logDir = path.join(get().dir, "pods", "bad");
      await mkdir(logDir, { recursive: true });
      await assert.rejects(client!.runPodSandbox(hostNetworkPod("bad", logDir), "tscfg"), (err: Error) => {
        assert.match(err.message, new RegExp(`${cfg.replace(/\./g, "\\.")}: unknown key "runtime_flag" \\(line 1\\)`));
        return true;
      });
      await waitFor(() => shimDaemons(get()).length === 0, { what: "no shim daemon after the refused pod", timeoutMs: 20_000 });
    });

    void test("runs the pod's sandbox through the file's `runtime`", async () => {
      const rec = recordingRunc(get(), "cri-runc");
      writeFileSync(cfg, `runtime = "${rec.bin}"\nlog_level = "debug"\n`);
      const logDir = path.join(get().dir, "pods", "ok");
      await mkdir(logDir, { recursive: true });
      const pod = await client!.runPodSandbox(hostNetworkPod("ok", logDir), "tscfg");
      assert.ok(rec.calls().some((l) => new RegExp(` create .*${pod}$`).test(l)), `runc create via the wrapper:\n${rec.calls().join("\n")}`);
      assert.ok((await shimLines(get(), pod)).some((l) => l.includes("level=debug")), "debug lines from log_level");
      await client!.stopPodSandbox(pod);
      await client!.removePodSandbox(pod);
      await waitFor(() => shimDaemons(get()).length === 0, { what: "no shim daemon after the pod is removed", timeoutMs: 20_000 });
    });
  });
}

for (const v of VERSIONS) criSuite(v);
