import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { parseStdio } from "../../src/stdio/index.js";

void suite("parseStdio()", () => {
  const ok: Array<[string, ReturnType<typeof parseStdio>]> = [
    ["", null],
    ["/run/containerd/fifo/1/c-stdout", { kind: "fifo", path: "/run/containerd/fifo/1/c-stdout" }],
    ["relative/fifo", { kind: "fifo", path: "relative/fifo" }],
    ["file:///var/log/c.log", { kind: "file", path: "/var/log/c.log" }],
    ["file:///a%20b/c", { kind: "file", path: "/a b/c" }],
    ["binary:///usr/bin/logger", { kind: "binary", path: "/usr/bin/logger", args: [], v2: false }],
    ["binary:///l?id=1&dir=%2Ftmp&flag", { kind: "binary", path: "/l", args: ["id", "1", "dir", "/tmp", "flag", ""], v2: false }],
    ["binary-v2:///opt/l?a=b", { kind: "binary", path: "/opt/l", args: ["a", "b"], v2: true }],
  ];
  for (const [input, want] of ok) {
    void test(`classifies ${JSON.stringify(input)}`, () => assert.deepEqual(parseStdio(input), want));
  }
  for (const bad of ["http://x/y", "ttrpc+unix:///run/s.sock?streaming_id=1", "file://host/x", "file:relative", "binary:/x", "file:///bad%zz"]) {
    void test(`rejects ${JSON.stringify(bad)} with InvalidArgument`, () => {
      assert.throws(() => parseStdio(bad), { name: "ShimError", code: "InvalidArgument" });
    });
  }
});
