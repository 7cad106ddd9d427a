import assert from "node:assert/strict";
import { suite, test } from "node:test";
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
