import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { suite, test, type TestContext } from "node:test";
import { google, runtimeoptions } from "../../../src/gen/bootstrap.js";
import { containerd } from "../../../src/gen/task.js";
import { SOCKET_DIR_ENV } from "../../../src/shim/socket/address.js";
import {
  CONFIG_ENV, configPath, DAEMON_LOG_LEVEL_ENV, GROUPING_ENV, daemonLogLevel, DEFAULT_CONFIG_PATH, loadShimConfig, resolveShimConfig, startConfig,
  LINGER_ENV, WARM_ENV, WARM_IDLE_ENV,
} from "../../../src/shim/config/config.js";
import { daemonNodeFlags, DAEMON_NODE_FLAGS, groupingId, loadStartConfig, START_CONFIG_NAMES } from "../../../src/shim/manager/start.js";
import { Client } from "../../../src/ttrpc/index.js";
import { waitFor } from "../../helpers/wait.js";
import { alive, daemonsFor, requireRoot, runShim, tempDir } from "../../helpers/shim.js";
import { refused } from "./refused.js";

function file(dir: string, name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

void suite("shim config file", () => {
  void test("is named by ConfigPath, else SHIM_TS_CONFIG, else the default path", () => {
    assert.equal(configPath({ SHIM_TS_CONFIG: "/e.toml" }, "/o.toml"), "/o.toml");
    assert.equal(configPath({ SHIM_TS_CONFIG: "/e.toml" }, ""), "/e.toml");
    assert.equal(configPath({ SHIM_TS_CONFIG: "/e.toml" }), "/e.toml");
    assert.equal(configPath({ SHIM_TS_CONFIG: "" }), DEFAULT_CONFIG_PATH);
    assert.equal(configPath({}), "/etc/containerd-shim-ts/config.toml");
  });

  void test("reads every key of the shim's own", async (t) => {
    const dir = await tempDir(t, "shim-config-");
    const p = file(dir, "c.toml", [
      "# all of them",
      'runtime = "/usr/local/bin/runc-wrap"',
      'grouping = "namespace"',
      'log_level = "warn"',
      'runtime_flags = ["--max-old-space-size=32", "--lite-mode"]',
    ].join("\n"));
    assert.deepEqual(loadShimConfig(p, {}), {
      runtime: "/usr/local/bin/runc-wrap",
      grouping: "namespace",
      logLevel: "warn",
      runtimeFlags: ["--max-old-space-size=32", "--lite-mode"],
      runtimeOptions: {},
      file: p,
    });
    assert.deepEqual(loadShimConfig(file(dir, "empty.toml", ""), {}), { grouping: "pod", runtimeOptions: {}, file: path.join(dir, "empty.toml") });
  });

  void test("takes SHIM_TS_GROUPING over the file's grouping, and refuses a bad one", async (t) => {
    const dir = await tempDir(t, "shim-config-");
    const p = file(dir, "c.toml", 'grouping = "pod"\n');
    assert.equal(loadShimConfig(p, { SHIM_TS_GROUPING: "namespace" }).grouping, "namespace");
    assert.equal(loadShimConfig(p, { SHIM_TS_GROUPING: "" }).grouping, "pod");
    refused(() => loadShimConfig(p, { SHIM_TS_GROUPING: "node" }), 'SHIM_TS_GROUPING: "node" is not one of "pod", "namespace"');
  });

  void test("gives the defaults when the default file is missing, and an error when a named file is", async (t) => {
    const dir = await tempDir(t, "shim-config-");
    const missing = path.join(dir, "missing.toml");
    // Only meaningful where the host has no default file (the test machines have none).
    assert.deepEqual(resolveShimConfig({}), { grouping: "pod", runtimeOptions: {} });
    assert.deepEqual(resolveShimConfig({ SHIM_TS_GROUPING: "namespace" }), { grouping: "namespace", runtimeOptions: {} });
    refused(() => resolveShimConfig({ SHIM_TS_CONFIG: missing }), `Cannot read shim config file "${missing}": ENOENT`);
    refused(() => resolveShimConfig({}, missing), `Cannot read shim config file "${missing}": ENOENT`);
    refused(() => resolveShimConfig({}, dir), `Cannot read shim config file "${dir}": EISDIR`);
  });

  void test("refuses an unknown key and a bad value, naming the file, the key and the line", async (t) => {
    const dir = await tempDir(t, "shim-config-");
    const load = (text: string) => () => loadShimConfig(file(dir, "c.toml", text), {});
    const p = path.join(dir, "c.toml");
    refused(load('\ngrouping_mode = "namespace"\n'),
      `${p}: unknown key "grouping_mode" (line 2): known keys are "runtime", "grouping", "log_level", "runtime_flags", "warm", "warm_idle_ms", "linger_ms"`);
    refused(load('grouping = "x"'), `${p}: key "grouping" (line 1): "x" is not one of "pod", "namespace"`);
    refused(load("grouping = 1"), `${p}: key "grouping" (line 1): 1 is not one of "pod", "namespace"`);
    refused(load('log_level = "trace"'), `${p}: key "log_level" (line 1): "trace" is not one of "debug", "info", "warn", "error"`);
    refused(load('runtime = ""'), `${p}: key "runtime" (line 1): "" is not a non-empty string`);
    refused(load("runtime = true"), `${p}: key "runtime" (line 1): true is not a non-empty string`);
    refused(load('runtime_flags = "--lite-mode"'), `${p}: key "runtime_flags" (line 1): "--lite-mode" is not an array of strings`);
    refused(load("runtime_flags = [1]"), `${p}: key "runtime_flags" (line 1): [1] is not an array of strings`);
    refused(load('runtime_flags = ["--a --b"]'), `${p}: key "runtime_flags" (line 1): "--a --b" is not one Node flag (like "--max-old-space-size=64")`);
    refused(load('runtime_flags = ["/tmp/x.js"]'), `${p}: key "runtime_flags" (line 1): "/tmp/x.js" is not one Node flag (like "--max-old-space-size=64")`);
    refused(load('runtime_flags = ["--eval=1"]'), `${p}: key "runtime_flags" (line 1): "--eval=1" would keep Node from running the shim daemon`);
    refused(load('runtime_flags = ["-e"]'), `${p}: key "runtime_flags" (line 1): "-e" would keep Node from running the shim daemon`);
  });

  void test("refuses TOML it does not read, naming the file and the line", async (t) => {
    const dir = await tempDir(t, "shim-config-");
    const p = file(dir, "c.toml", 'runtime = "x"\n[plugins]\n');
    refused(() => loadShimConfig(p, {}), `${p}: line 2: tables are not supported: write every key at top level`);
  });

  void test("takes runtime options only from a file named by ConfigPath, type-checked", async (t) => {
    const dir = await tempDir(t, "shim-config-");
    const p = file(dir, "c.toml", 'BinaryName = "crun"\nSystemdCgroup = true\nIoUid = 1000\nruntime = "runc"\n');
    assert.deepEqual(resolveShimConfig({}, p), {
      runtime: "runc",
      grouping: "pod",
      runtimeOptions: { BinaryName: "crun", SystemdCgroup: true, IoUid: 1000 },
      file: p,
    });
    refused(() => resolveShimConfig({ SHIM_TS_CONFIG: p }),
      `${p}: key "BinaryName" (line 1): a runtime option is read only from a file named by the ConfigPath runtime option`);
    const bad = (text: string) => () => resolveShimConfig({}, file(dir, "o.toml", text));
    const o = path.join(dir, "o.toml");
    refused(bad("SystemdCgroup = 1"), `${o}: key "SystemdCgroup" (line 1): 1 is not a boolean`);
    refused(bad('IoUid = "0"'), `${o}: key "IoUid" (line 1): "0" is not an integer`);
    refused(bad("Root = []"), `${o}: key "Root" (line 1): [] is not a string`);
    refused(bad("Systemdcgroup = true"), `${o}: unknown key "Systemdcgroup" (line 1): known keys are "runtime", "grouping", "log_level", "runtime_flags", "warm", "warm_idle_ms", "linger_ms"`);
  });

  void test("at start, gives the defaults and the reason for a file it cannot use", async (t) => {
    const dir = await tempDir(t, "shim-config-");
    const p = file(dir, "c.toml", 'grouping = "namespace"\nlog_levl = "debug"\n');
    assert.deepEqual(startConfig({}, p), {
      config: { grouping: "pod", runtimeOptions: {} },
      error: `${p}: unknown key "log_levl" (line 2): known keys are "runtime", "grouping", "log_level", "runtime_flags", "warm", "warm_idle_ms", "linger_ms"`,
    });
    assert.equal(startConfig({ SHIM_TS_GROUPING: "x" }).error, 'SHIM_TS_GROUPING: "x" is not one of "pod", "namespace"');
    assert.deepEqual(startConfig({}, file(dir, "ok.toml", 'grouping = "namespace"')).config.grouping, "namespace");
  });

  void test("sets the daemon's log level when start hands one over, else follows -debug", () => {
    assert.equal(daemonLogLevel({ [DAEMON_LOG_LEVEL_ENV]: "error" }, true), "error");
    assert.equal(daemonLogLevel({ [DAEMON_LOG_LEVEL_ENV]: "debug" }, false), "debug");
    assert.equal(daemonLogLevel({ [DAEMON_LOG_LEVEL_ENV]: "loud" }, true), "debug");
    assert.equal(daemonLogLevel({}, false), "info");
  });

  void test("runtime_flags replace the built-in Node flags; SHIM_TS_DAEMON_NODE_FLAGS replaces both", () => {
    assert.deepEqual(daemonNodeFlags({}), [...DAEMON_NODE_FLAGS]);
    assert.deepEqual(daemonNodeFlags({}, ["--max-old-space-size=32"]), ["--max-old-space-size=32"]);
    assert.deepEqual(daemonNodeFlags({}, []), []);
    assert.deepEqual(daemonNodeFlags({ SHIM_TS_DAEMON_NODE_FLAGS: "--jitless" }, ["--max-old-space-size=32"]), ["--jitless"]);
  });

  void test("namespace grouping gives every container of the namespace one group", async (t) => {
    const dir = await tempDir(t, "shim-config-");
    mkdirSync(path.join(dir, "b"));
    writeFileSync(path.join(dir, "b", "config.json"), JSON.stringify({ annotations: { "io.kubernetes.cri.sandbox-id": "pod1" } }));
    assert.equal(groupingId(path.join(dir, "b"), "c1"), "pod1");
    assert.equal(groupingId(path.join(dir, "b"), "c1", "pod"), "pod1");
    assert.equal(groupingId(path.join(dir, "b"), "c1", "namespace"), groupingId(dir, "other", "namespace"));
  });
});

// The real `start` and daemon, with a config file (root: start binds under the socket dir and spawns).
const T = containerd.task.v2;

async function startEnv(t: TestContext) {
  const root = await tempDir(t, "shim-cfg-start-");
  const sockets = new Set<string>();
  t.after(async () => {
    for (const s of sockets) for (const pid of daemonsFor(s)) process.kill(pid, "SIGKILL");
    await waitFor(() => [...sockets].every((s) => daemonsFor(s).length === 0), { what: "daemons to exit", timeoutMs: 10_000 });
  });
  const env: NodeJS.ProcessEnv = { ...process.env, [SOCKET_DIR_ENV]: path.join(root, "s"), TTRPC_ADDRESS: path.join(root, "c.sock.ttrpc") };
  delete env["SHIM_TS_CONFIG"];
  delete env["SHIM_TS_GROUPING"];
  delete env["SHIM_TS_DAEMON_NODE_FLAGS"];
  const start = async (id: string, o: { sandbox?: string; configPath?: string; env?: NodeJS.ProcessEnv } = {}) => {
    const bundle = path.join(root, "bundles", id);
    mkdirSync(bundle, { recursive: true });
    writeFileSync(path.join(bundle, "config.json"), JSON.stringify({ annotations: { "io.kubernetes.cri.sandbox-id": o.sandbox ?? id } }));
    const stdin = o.configPath === undefined ? undefined : google.protobuf.Any.encode({
      typeUrl: "runtimeoptions.v1.Options",
      value: runtimeoptions.v1.Options.encode({ configPath: o.configPath }).finish(),
    }).finish();
    const r = await runShim(["-namespace", "t", "-address", path.join(root, "c.sock"), "-publish-binary", "/bin/true", "-id", id, "start"],
      { cwd: bundle, env: { ...env, ...o.env }, ...(stdin ? { stdin } : {}) });
    const text = r.stdout.toString("utf8");
    if (text.startsWith("unix://")) sockets.add(text.slice("unix://".length));
    return { ...r, text, bundle, sock: text.slice("unix://".length) };
  };
  const daemon = async (sock: string) => {
    const [pid] = await waitFor(() => { const d = daemonsFor(sock); return d.length > 0 ? d : undefined; }, { what: "the daemon" });
    return { pid: pid!, cmdline: readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0"), environ: readFileSync(`/proc/${pid}/environ`, "utf8").split("\0") };
  };
  return { root, start, daemon };
}

void suite("shim start with a config file", () => {
  void test("starts the daemon with the file's runtime_flags and log_level (file named by ConfigPath)", async (t) => {
    requireRoot("the start path");
    const s = await startEnv(t);
    const cfg = file(s.root, "c.toml", 'runtime_flags = ["--max-old-space-size=40"]\nlog_level = "warn"\n');
    const r = await s.start("p1", { configPath: cfg });
    assert.equal(r.stderr, "");
    assert.equal(r.code, 0, r.text);
    const d = await s.daemon(r.sock);
    assert.ok(d.cmdline.includes("--max-old-space-size=40"), d.cmdline.join(" "));
    assert.ok(!d.cmdline.includes("--lite-mode"), d.cmdline.join(" "));
    assert.ok(d.environ.includes(`${DAEMON_LOG_LEVEL_ENV}=warn`), "the daemon gets the log level");
    const plain = await s.start("p2");
    const d2 = await s.daemon(plain.sock);
    assert.ok(d2.cmdline.includes("--lite-mode"), d2.cmdline.join(" "));
    assert.ok(!d2.environ.some((e) => e.startsWith(`${DAEMON_LOG_LEVEL_ENV}=`)), "no level without a file");
  });

  void test("groups two pods into one daemon with grouping = \"namespace\" (file from SHIM_TS_CONFIG, or SHIM_TS_GROUPING)", async (t) => {
    requireRoot("the start path");
    const s = await startEnv(t);
    const cfg = file(s.root, "c.toml", 'grouping = "namespace"\n');
    const a = await s.start("a1", { env: { SHIM_TS_CONFIG: cfg } });
    const b = await s.start("b1", { env: { SHIM_TS_CONFIG: cfg } });
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.text, a.text, "one address for two pods");
    const c = await s.start("c1", { env: { SHIM_TS_GROUPING: "namespace" } });
    assert.equal(c.text, a.text);
    const own = await s.start("d1");
    assert.notEqual(own.text, a.text, "the default stays one daemon per pod");
  });

  void test("a bad file does not fail start; Create on the daemon refuses it with InvalidArgument naming key and file", async (t) => {
    requireRoot("the start path");
    const s = await startEnv(t);
    const cfg = file(s.root, "bad.toml", 'grouping_mode = "namespace"\nruntime_flags = ["--max-old-space-size=40"]\n');
    const r = await s.start("x1", { configPath: cfg });
    assert.equal(r.stderr, "");
    assert.equal(r.code, 0, r.text);
    const d = await s.daemon(r.sock);
    assert.ok(d.cmdline.includes("--lite-mode"), `defaults: ${d.cmdline.join(" ")}`);
    const client = await Client.connect(r.sock);
    t.after(() => client.close());
    const options = { typeUrl: "runtimeoptions.v1.Options", value: runtimeoptions.v1.Options.encode({ configPath: cfg }).finish() };
    await assert.rejects(
      client.callTyped("containerd.task.v2.Task", "Create", T.CreateTaskRequest, { id: "x1", bundle: r.bundle, options }, T.CreateTaskResponse, { timeoutMs: 10_000 }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, "InvalidArgument", err.message);
        assert.match(err.message, new RegExp(`${cfg.replace(/[.]/g, "\\.")}: unknown key "grouping_mode" \\(line 1\\)`));
        return true;
      },
    );
    process.kill(d.pid, "SIGTERM");
    await waitFor(() => !alive(d.pid), { what: "the daemon to exit on SIGTERM" });
  });
});

void suite("start's config loading", () => {
  void test("repeats config.ts's names, and loads config.ts only when there is something to read", async (t) => {
    assert.equal(START_CONFIG_NAMES.defaultPath, DEFAULT_CONFIG_PATH);
    assert.deepEqual(START_CONFIG_NAMES.env, [CONFIG_ENV, GROUPING_ENV, WARM_ENV, WARM_IDLE_ENV, LINGER_ENV]);
    assert.equal(START_CONFIG_NAMES.daemonLogLevelEnv, DAEMON_LOG_LEVEL_ENV);
    const dir = await tempDir(t, "shim-config-");
    const none = path.join(dir, "none.toml");
    const here = file(dir, "here.toml", 'grouping = "namespace"\n');
    assert.deepEqual(await loadStartConfig({}, undefined, none), { config: { grouping: "pod", runtimeOptions: {} } });
    assert.equal((await loadStartConfig({}, here, none)).config.grouping, "namespace");
    assert.equal((await loadStartConfig({ [CONFIG_ENV]: here }, undefined, none)).config.grouping, "namespace");
    assert.equal((await loadStartConfig({ [GROUPING_ENV]: "namespace" }, undefined, none)).config.grouping, "namespace");
    assert.match((await loadStartConfig({ [CONFIG_ENV]: none }, undefined, none)).error ?? "", /Cannot read shim config file ".*none\.toml": ENOENT/);
  });
});
