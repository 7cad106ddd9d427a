// `ctr sandboxes run` on containerd 1.7.24 (protocol.md §11 item 3 expected it to drive the shim sandbox
// path without CRI). It cannot, for any runtime: 1.7's client NewSandbox only writes the sandbox store
// record and never calls the controller's Create, so the controller's Start finds no shim and fails with
// `unable to find sandbox` before anything is started. This test pins that finding; if a containerd
// update changes it, the test fails and the README's sandboxer section must be revised.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, suite, test } from "node:test";
import { RUNTIME, VERSIONS, startContainerd, type Containerd } from "../helpers/containerd.js";
import { shimDaemons } from "../helpers/cri.js";

/** Only our shim serves sandboxes (the runc shim has no SandboxService), and only 1.7 runs them here. */
function skipReason(): string | false {
  if (RUNTIME !== "io.containerd.ts.v2") return `${RUNTIME} has no SandboxService`;
  if (!VERSIONS.includes("1.7")) return "containerd 1.7 is not among E2E_VERSIONS";
  return false;
}

void suite("ctr sandboxes run (containerd 1.7)", { timeout: 120_000, skip: skipReason() }, () => {
  let c: Containerd | undefined;
  const get = (): Containerd => c ?? assert.fail("containerd 1.7 did not start");

  before(async () => {
    c = await startContainerd("1.7", { images: [], env: { ENABLE_CRI_SANDBOXES: "1" } });
  });
  after(async () => {
    await c?.stop();
  });

  void test("never starts a shim: the 1.7 client skips the controller's Create, and Start fails with 'unable to find sandbox'", async () => {
    const cd = get();
    // ctr parses the file as an OCI runtime spec and stores it as the sandbox's spec.
    const pod = path.join(cd.dir, "pod.json");
    await writeFile(pod, JSON.stringify({ hostname: "ctr-pod", linux: {} }));
    const r = await cd.ctr(["sandboxes", "run", "--runtime", "io.containerd.ts.v2", pod, "ctr-sb1"], { timeoutMs: 30_000 });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /unable to find sandbox "ctr-sb1"/);
    assert.deepEqual(shimDaemons(cd), [], "no shim daemon was started");
    const log = await cd.logs();
    assert.match(log, /msg="create sandbox" req="sandbox:\{sandbox_id:\\"ctr-sb1\\"/, "the store record was written");
    assert.doesNotMatch(log, /shim daemon started|level=debug msg="starting shim"/, "no shim was started");
    const ls = await cd.ctr(["sandboxes", "ls"]);
    assert.match(ls.stdout, /ctr-sb1\s.*io\.containerd\.ts\.v2/, "the record stays behind");
    const rm = await cd.ctr(["sandboxes", "rm", "--force", "ctr-sb1"]);
    assert.equal(rm.code, 0, rm.stderr);
  });
});
