import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { daemonArgs, FlagError, parseFlags } from "../../../src/shim/invocation/flags.js";

void suite("parseFlags()", () => {
  void test("parses containerd's start command line", () => {
    const f = parseFlags(["-namespace", "k8s.io", "-address", "/run/containerd/containerd.sock",
      "-publish-binary", "/usr/bin/containerd", "-id", "abc", "-debug", "start"]);
    assert.equal(f.namespace, "k8s.io");
    assert.equal(f.address, "/run/containerd/containerd.sock");
    assert.equal(f.publishBinary, "/usr/bin/containerd");
    assert.equal(f.id, "abc");
    assert.equal(f.debug, true);
    assert.equal(f.action, "start");
  });

  const table: Array<[string, string[], Partial<ReturnType<typeof parseFlags>>]> = [
    ["-x=v", ["-id=a", "delete"], { id: "a", action: "delete" }],
    ["--x v", ["--id", "a"], { id: "a", action: "serve" }],
    ["--x=v", ["--bundle=/b"], { bundle: "/b" }],
    ["an empty value", ["-id", ""], { id: "" }],
    ["a value that starts with a dash", ["-id", "-x"], { id: "-x" }],
    ["a value with '='", ["-id=a=b"], { id: "a=b" }],
    ["-v", ["-v"], { version: true }],
    ["-version", ["--version"], { version: true }],
    ["-info", ["-info"], { info: true }],
    ["-debug=false", ["-debug=false"], { debug: false }],
    ["-debug=1", ["-debug=1"], { debug: true }],
    ["-socket and -debug-socket", ["-socket", "/s", "-debug-socket", "/d"], { socket: "/s", debugSocket: "/d" }],
    ["no action as the daemon", ["-id", "a"], { action: "serve" }],
    ["--start", ["--start", "-id", "a"], { action: "start" }],
    ["--delete", ["-delete"], { action: "delete" }],
    ["flags after the action", ["start", "-id", "a"], { action: "start", id: "a" }],
    ["the same action twice", ["--start", "start"], { action: "start" }],
    ["a positional after --", ["--", "delete"], { action: "delete" }],
  ];
  for (const [name, argv, want] of table) {
    void test(`accepts ${name}`, () => {
      const f = parseFlags(argv);
      for (const [k, v] of Object.entries(want)) assert.deepEqual(f[k as keyof typeof f], v, k);
    });
  }

  const bad: Array<[string, string[], RegExp]> = [
    ["an unknown flag", ["-nope"], /Unknown flag "-nope"/],
    ["an unknown action", ["stop"], /Unknown action "stop"/],
    ["a missing value", ["-id"], /needs an argument: -id/],
    ["a bad boolean", ["-debug=maybe"], /Invalid boolean/],
    ["conflicting actions", ["--start", "delete"], /Conflicting actions/],
    ["two positionals", ["start", "start"], /Unexpected argument/],
    ["a triple dash", ["---id", "a"], /Bad flag syntax/],
  ];
  for (const [name, argv, re] of bad) {
    void test(`rejects ${name}`, () => {
      assert.throws(() => parseFlags(argv), (err: unknown) => err instanceof FlagError && re.test(err.message));
    });
  }
});

void suite("daemonArgs()", () => {
  void test("passes identity, socket and debug, and no action word", () => {
    const f = parseFlags(["-namespace", "n", "-address", "/a", "-publish-binary", "/p", "-id", "i", "start"]);
    const args = daemonArgs(f, "/s/h", true);
    assert.deepEqual(args, ["-namespace", "n", "-id", "i", "-address", "/a", "-publish-binary", "/p", "-socket", "/s/h", "-debug"]);
    const back = parseFlags(args);
    assert.equal(back.action, "serve");
    assert.equal(back.socket, "/s/h");
  });
});
