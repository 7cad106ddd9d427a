import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { suite, test } from "node:test";
import { DEFAULT_SOCKET_DIR, SOCKET_DIR_ENV, socketAddress, socketDir, socketPath } from "../../../src/shim/socket/address.js";

const sha = (s: string): string => createHash("sha256").update(s).digest("hex");

void suite("socketAddress()", () => {
  void test("hashes join(address, namespace, group) under /run/containerd/s", () => {
    const want = `unix:///run/containerd/s/${sha("/run/containerd/containerd.sock/k8s.io/pod1")}`;
    assert.equal(socketAddress("/run/containerd/containerd.sock", "k8s.io", "pod1"), want);
    assert.equal(want.length - "unix://".length, 82); // the default path length protocol.md quotes
  });

  void test("cleans the joined key like Go's filepath.Join", () => {
    const want = socketAddress("/run/c.sock", "ns", "id");
    assert.equal(socketAddress("/run//c.sock/", "ns", "id"), want);
    assert.equal(socketAddress("/run/c.sock", "ns", "id/"), want);
    assert.equal(socketAddress("/run/c.sock", "", "id"), `unix:///run/containerd/s/${sha("/run/c.sock/id")}`);
  });

  void test("uses the given socket directory", () => {
    assert.equal(socketAddress("/a", "b", "c", "/tmp/s"), `unix:///tmp/s/${sha("/a/b/c")}`);
  });
});

void suite("socketPath()", () => {
  void test("strips unix:// and keeps plain paths", () => {
    assert.equal(socketPath("unix:///x/y"), "/x/y");
    assert.equal(socketPath("/x/y"), "/x/y");
  });
});

void suite("socketDir()", () => {
  void test("prefers containerd's socket_dir, then the test hook, then the default", () => {
    assert.equal(socketDir("/b", { [SOCKET_DIR_ENV]: "/e" }), "/b");
    assert.equal(socketDir(undefined, { [SOCKET_DIR_ENV]: "/e" }), "/e");
    assert.equal(socketDir("", {}), DEFAULT_SOCKET_DIR);
  });
});
