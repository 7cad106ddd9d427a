import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { containerd, google, runtimeoptions } from "../../../src/gen/bootstrap.js";
import { decodeStartInput, shimOptions, typeName } from "../../../src/shim/config/options.js";

const B = containerd.runtime.bootstrap.v1;
const any = (typeUrl: string, value: Uint8Array): Uint8Array => google.protobuf.Any.encode({ typeUrl, value }).finish();
const runcOptions = (o: containerd.runc.v1.Options.$Properties): Uint8Array =>
  any("containerd.runc.v1.Options", containerd.runc.v1.Options.encode(o).finish());

void suite("decodeStartInput()", () => {
  void test("treats empty stdin as no options", () => {
    assert.deepEqual(decodeStartInput(new Uint8Array(), "id", "ns"), {});
  });

  void test("takes a runtime-options Any as options", () => {
    const input = decodeStartInput(runcOptions({ shimCgroup: "/pod" }), "id", "ns");
    assert.equal(input.bootstrap, undefined);
    assert.equal(input.options?.typeUrl, "containerd.runc.v1.Options");
    assert.equal(shimOptions(input.options).shimCgroup, "/pod");
  });

  void test("does not take an Any that decodes as BootstrapParams for bootstrap input", () => {
    // type_url lands in instance_id and value in namespace; here they even look like plausible ids.
    const bytes = any("c1", Buffer.from("default"));
    const asParams = B.BootstrapParams.decode(bytes);
    assert.equal(asParams.instanceId, "c1");
    const input = decodeStartInput(bytes, "c2", "default");
    assert.equal(input.bootstrap, undefined);
    assert.equal(input.options?.typeUrl, "c1");
  });

  void test("accepts BootstrapParams naming this id and namespace, with options from extensions", () => {
    const opts = containerd.runc.v1.Options.encode({ shimCgroup: "/x" }).finish();
    const bytes = B.BootstrapParams.encode({
      instanceId: "c1",
      namespace: "default",
      logLevel: B.LogLevel.LOG_LEVEL_DEBUG,
      containerdVersion: "2.3.0",
      containerdTtrpcAddress: "/run/containerd/containerd.sock.ttrpc",
      extensions: [{ value: { typeUrl: "other.Thing", value: new Uint8Array([1]) } },
        { value: { typeUrl: "containerd.runc.v1.Options", value: opts } }],
      socketDir: "/run/containerd/s2",
    }).finish();
    const input = decodeStartInput(bytes, "c1", "default");
    assert.deepEqual(input.bootstrap, {
      debug: true,
      ttrpcAddress: "/run/containerd/containerd.sock.ttrpc",
      containerdVersion: "2.3.0",
      socketDir: "/run/containerd/s2",
    });
    assert.equal(shimOptions(input.options).shimCgroup, "/x");
  });

  void test("rejects BootstrapParams for another namespace", () => {
    const bytes = B.BootstrapParams.encode({ instanceId: "c1", namespace: "other" }).finish();
    assert.equal(decodeStartInput(bytes, "c1", "default").bootstrap, undefined);
  });

  void test("treats log levels above debug as not debug", () => {
    const bytes = B.BootstrapParams.encode({ instanceId: "c1", namespace: "n", logLevel: B.LogLevel.LOG_LEVEL_INFO }).finish();
    assert.equal(decodeStartInput(bytes, "c1", "n").bootstrap?.debug, false);
    const trace = B.BootstrapParams.encode({ instanceId: "c1", namespace: "n", logLevel: B.LogLevel.LOG_LEVEL_TRACE }).finish();
    assert.equal(decodeStartInput(trace, "c1", "n").bootstrap?.debug, true);
  });
});

void suite("shimOptions()", () => {
  void test("reads containerd.linux.runc.CreateOptions", () => {
    const value = containerd.linux.runc.CreateOptions.encode({ shimCgroup: "/old" }).finish();
    assert.equal(shimOptions({ typeUrl: "containerd.linux.runc.CreateOptions", value }).shimCgroup, "/old");
  });

  void test("reads runtimeoptions.v1.Options TOML", () => {
    const toml = 'BinaryName = "/usr/local/bin/runc"\nShimCgroup = "/pods/\\"a\\""\nSystemdCgroup = true\n';
    const value = runtimeoptions.v1.Options.encode({ configBody: Buffer.from(toml) }).finish();
    assert.deepEqual(shimOptions({ typeUrl: "runtimeoptions.v1.Options", value }), {
      shimCgroup: '/pods/"a"',
      binaryName: "/usr/local/bin/runc",
    });
  });

  void test("ignores unknown and undecodable options", () => {
    assert.deepEqual(shimOptions({ typeUrl: "x.Y", value: new Uint8Array([1]) }), { shimCgroup: "", binaryName: "" });
    assert.deepEqual(shimOptions({ typeUrl: "containerd.runc.v1.Options", value: new Uint8Array([0xff]) }), {
      shimCgroup: "",
      binaryName: "",
    });
  });

  void test("reads type names behind a URL prefix", () => {
    assert.equal(typeName("type.googleapis.com/containerd.runc.v1.Options"), "containerd.runc.v1.Options");
  });
});
