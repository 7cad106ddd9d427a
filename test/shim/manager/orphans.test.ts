// Which containers the `delete` of a dead pod sandbox cleans up (src/shim/manager/orphans.ts): only the sandbox's
// own app containers, found by the io.kubernetes.cri.sandbox-id annotation (from `runc list`, else config.json).
import assert from "node:assert/strict";
import { test } from "node:test";
import { podOrphans } from "../../../src/shim/manager/orphans.js";

const pod = (id: string, sandbox: string) => ({ id, bundle: `/b/${id}`, annotations: { "io.kubernetes.cri.sandbox-id": sandbox } });

void test("picks the sandbox's app containers, never the sandbox itself or another pod's", () => {
  const list = [pod("p1", "p1"), pod("a1", "p1"), pod("a2", "p1"), pod("p2", "p2"), pod("b1", "p2"), { id: "ctr1", bundle: "/b/ctr1", annotations: {} }];
  assert.deepEqual(podOrphans(list, "p1").map((c) => c.id), ["a1", "a2"]);
  assert.deepEqual(podOrphans(list, "p2").map((c) => c.id), ["b1"]);
  assert.deepEqual(podOrphans(list, "ctr1").map((c) => c.id), []);
});

void test("reads config.json when the runtime's list has no annotations, and skips unreadable bundles", () => {
  const configs: Record<string, Record<string, string> | undefined> = {
    "/b/a1": { "io.kubernetes.cri.sandbox-id": "p1" },
    "/b/x": { "io.kubernetes.cri.sandbox-id": "p9" },
  };
  const list = [{ id: "a1", bundle: "/b/a1" }, { id: "x", bundle: "/b/x" }, { id: "gone", bundle: "/b/gone" }, { id: "nobundle" }];
  assert.deepEqual(podOrphans(list, "p1", (b) => configs[b]).map((c) => c.id), ["a1"]);
});
