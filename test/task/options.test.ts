import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { suite, test } from "node:test";
import { ShimError } from "../../src/errdefs.js";
import { resolveShimConfig, RUNTIME_OPTION_KEYS } from "../../src/shim/config/config.js";
import { containerd, runtimeoptions } from "../../src/gen/bootstrap.js";
import { parseOptions, parseTomlTable } from "../../src/task/options.js";

const codecs = {
  runcOptions: (v: Uint8Array) => containerd.runc.v1.Options.decode(v) as unknown as Record<string, unknown>,
  linuxCreateOptions: (v: Uint8Array) =>
    containerd.linux.runc.CreateOptions.decode(v) as unknown as Record<string, unknown>,
  runtimeOptions: (v: Uint8Array) => runtimeoptions.v1.Options.decode(v),
};

void suite("parseOptions", () => {
  void test("reads containerd.runc.v1.Options", () => {
    const value = containerd.runc.v1.Options.encode({ binaryName: "crun", root: "/r", systemdCgroup: true, ioUid: 5 }).finish();
    assert.deepEqual(parseOptions({ typeUrl: "containerd.runc.v1.Options", value }, codecs), {
      binaryName: "crun",
      root: "/r",
      systemdCgroup: true,
      ioUid: 5,
    });
  });

  void test("reads the 1.6/1.7 containerd.linux.runc.CreateOptions", () => {
    const value = containerd.linux.runc.CreateOptions.encode({ noNewKeyring: true, shimCgroup: "/s", ioGid: 9 }).finish();
    assert.deepEqual(parseOptions({ typeUrl: "containerd.linux.runc.CreateOptions", value }, codecs), {
      noNewKeyring: true,
      shimCgroup: "/s",
      ioGid: 9,
    });
  });

  void test("reads the CRI TOML table of runtimeoptions.v1.Options", () => {
    const configBody = Buffer.from('BinaryName = "/usr/bin/runc-wrap"\nSystemdCgroup = true\nRoot = "/x"\n');
    const value = runtimeoptions.v1.Options.encode({ typeUrl: "x", configBody }).finish();
    assert.deepEqual(parseOptions({ typeUrl: "runtimeoptions.v1.Options", value }, codecs), {
      binaryName: "/usr/bin/runc-wrap",
      root: "/x",
      systemdCgroup: true,
    });
  });

  void test("accepts an absent Any and rejects an unknown type with InvalidArgument", () => {
    assert.deepEqual(parseOptions(undefined, codecs), {});
    assert.throws(() => parseOptions({ typeUrl: "foo.Bar", value: new Uint8Array() }, codecs), {
      code: "InvalidArgument",
      message: /foo\.Bar/,
    });
  });

  void test("parses flat TOML scalars", () => {
    assert.deepEqual(parseTomlTable("# c\nA = 1\nB = 'x'\nC = false\n[t]\n"), { A: 1, B: "x", C: false });
  });
});

void suite("parseOptions with the shim config file", () => {
  const fileOpts = (configPath: string) => ({ typeUrl: "runtimeoptions.v1.Options", value: runtimeoptions.v1.Options.encode({ configPath }).finish() });
  const runc = (o: object) => ({ typeUrl: "containerd.runc.v1.Options", value: containerd.runc.v1.Options.encode(o).finish() });

  void test("asks the loader for the file ConfigPath names, and for the default file otherwise", () => {
    const asked: (string | undefined)[] = [];
    const loader = (p: string | undefined) => (asked.push(p), { runtimeOptions: {} });
    parseOptions(fileOpts("/etc/x.toml"), codecs, loader);
    parseOptions(runc({ root: "/r" }), codecs, loader);
    parseOptions(undefined, codecs, loader);
    assert.deepEqual(asked, ["/etc/x.toml", undefined, undefined]);
  });

  void test("takes the runtime options of a ConfigPath file, and `runtime` when no BinaryName is given", () => {
    const loader = () => ({ runtime: "/bin/wrap", runtimeOptions: { Root: "/r", NoPivotRoot: true, IoUid: 7 } });
    assert.deepEqual(parseOptions(fileOpts("/x.toml"), codecs, loader), { binaryName: "/bin/wrap", root: "/r", noPivotRoot: true, ioUid: 7 });
    assert.deepEqual(parseOptions(undefined, codecs, loader), { binaryName: "/bin/wrap" }, "the default file's runtime");
    assert.deepEqual(parseOptions(runc({ root: "/q" }), codecs, loader), { root: "/q", binaryName: "/bin/wrap" },
      "a file not named by ConfigPath gives no runtime options");
  });

  void test("lets BinaryName win over `runtime`, from the options or from the file", () => {
    const loader = () => ({ runtime: "/bin/wrap", runtimeOptions: { BinaryName: "/bin/crun" } });
    assert.equal(parseOptions(fileOpts("/x.toml"), codecs, loader).binaryName, "/bin/crun");
    assert.equal(parseOptions(runc({ binaryName: "/bin/runc2" }), codecs, loader).binaryName, "/bin/runc2");
    const body = runtimeoptions.v1.Options.encode({ configBody: Buffer.from('BinaryName = "/bin/b"\n') }).finish();
    assert.equal(parseOptions({ typeUrl: "runtimeoptions.v1.Options", value: body }, codecs, loader).binaryName, "/bin/b");
  });

  void test("passes the loader's InvalidArgument through, and without a loader refuses a ConfigPath", () => {
    const loader = () => { throw new ShimError("InvalidArgument", '/x.toml: unknown key "grouping_mode" (line 1)'); };
    assert.throws(() => parseOptions(fileOpts("/x.toml"), codecs, loader), { code: "InvalidArgument", message: /\/x\.toml: unknown key "grouping_mode"/ });
    assert.throws(() => parseOptions(fileOpts("/x.toml"), codecs), { code: "InvalidArgument", message: /"\/x\.toml": no config loader/ });
    assert.deepEqual(parseOptions(runc({ root: "/q" }), codecs), { root: "/q" });
  });

  void test("maps every runtime option key the config file accepts onto a runtime option", async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "task-opts-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const sample = { string: '"v"', boolean: "true", integer: "5" };
    const text = Object.entries(RUNTIME_OPTION_KEYS).map(([k, type]) => `${k} = ${sample[type]}`).join("\n");
    const p = path.join(dir, "all.toml");
    writeFileSync(p, text);
    const out = parseOptions(fileOpts(p), codecs, (cp) => resolveShimConfig({}, cp));
    assert.equal(Object.keys(out).length, Object.keys(RUNTIME_OPTION_KEYS).length, JSON.stringify(out));
  });
});
