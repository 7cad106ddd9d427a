import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { jsonAnswer, parseContainerdMajor } from "../../../src/shim/manager/version-probe.js";

void suite("version probe", () => {
  void test("reads containerd's major version from its --version line", () => {
    assert.equal(parseContainerdMajor("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n"), 1);
    assert.equal(parseContainerdMajor("containerd github.com/containerd/containerd/v2 2.1.9+unknown \n"), 2);
    assert.equal(parseContainerdMajor("containerd containerd.io v2.0.5 fb4c30d4ede3531652d86197bf3fc9515e5276d9\n"), 2);
    assert.equal(parseContainerdMajor("k3s version v1.30.1+k3s1"), 1);
    assert.equal(parseContainerdMajor("no version here"), undefined);
  });

  void test("formats the version answer containerd 2.0-2.2 parse", () => {
    assert.deepEqual(JSON.parse(jsonAnswer(3, "unix:///run/containerd/s/abc")), {
      version: 3,
      address: "unix:///run/containerd/s/abc",
      protocol: "ttrpc",
    });
  });
});
