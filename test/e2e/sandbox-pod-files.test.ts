// The shim's pod files (src/sandbox/podfiles.ts, criroot.ts) checked against containerd's own podsandbox
// controller on 1.7 and 2.1 (protocol.md §11 item 16): the CRI root the shim finds through Introspection
// is where containerd writes <CRI root>/sandboxes/<id>/{hostname,hosts,resolv.conf}, and the shim writes
// the same bytes and modes for the same pod config. This is how 2.x is covered: Debian's 2.1.9 cannot run
// a shim sandboxer pod at all (§11 item 10); 1.7's shim mode itself is in sandbox-cri.test.ts.
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, suite, test } from "node:test";
import { Logger } from "../../src/log.js";
import { CRI_PLUGIN_DIR, CriRoot } from "../../src/sandbox/criroot.js";
import { podFilePaths, writePodFiles, type PodFilePaths } from "../../src/sandbox/podfiles.js";
import { VERSIONS, startContainerd, type Containerd, type ContainerdVersion } from "../helpers/containerd.js";
import { CRI_NS, CriClient, hostNetworkPod, type PodSandboxConfig } from "../helpers/cri.js";

const DNS = { servers: ["127.0.0.53"], searches: ["e2e.svc.cluster.local"], options: ["ndots:5", "attempts:2"] };

/** The three files' text and mode, and the directory's mode. */
function snapshot(p: PodFilePaths): Record<string, string> {
  const out: Record<string, string> = { dir: (statSync(p.dir).mode & 0o777).toString(8) };
  for (const [name, file] of [["hostname", p.hostname], ["hosts", p.hosts], ["resolv.conf", p.resolvConf]] as const) {
    out[name] = `${(statSync(file).mode & 0o777).toString(8)} ${readFileSync(file, "utf8")}`;
  }
  return out;
}

function filesSuite(v: ContainerdVersion): void {
  void suite(`the pod files of containerd ${v}'s podsandbox controller`, { timeout: 120_000 }, () => {
    let c: Containerd | undefined;
    let client: CriClient | undefined;
    let scratch = "";
    const get = (): Containerd => c ?? assert.fail(`containerd ${v} did not start`);
    const cc = (): CriClient => client ?? assert.fail("no CRI client");

    before(async () => {
      c = await startContainerd(v, { cri: true, namespace: CRI_NS, images: ["busybox", "pause"] });
      client = await CriClient.connect(c.address);
      scratch = await mkdtemp(path.join(os.tmpdir(), "podfiles-ref-"));
    });
    after(async () => {
      client?.close();
      await c?.stop();
      if (scratch !== "") await rm(scratch, { recursive: true, force: true });
    });

    void test("is found by asking containerd's Introspection: <root>/io.containerd.grpc.v1.cri", async () => {
      const lines: string[] = [];
      const found = await new CriRoot(get().address, new Logger({ write: (l) => lines.push(l) }, "warn")).get();
      assert.equal(found, path.join(get().root, CRI_PLUGIN_DIR));
      assert.deepEqual(lines, [], "no fallback warning");
    });

    // Host network (no CNI needed), so no hostname (protocol.md §11 item 11): both write the node's.
    for (const [what, dns] of [["with a dns_config", DNS], ["without one", undefined]] as const) {
      void test(`holds the bytes and modes the shim writes, for a host-network pod ${what}`, async () => {
        const name = dns ? "dns" : "plain";
        const logDir = path.join(get().dir, "pods", name);
        await mkdir(logDir, { recursive: true });
        const config: PodSandboxConfig = { ...hostNetworkPod(`ref-${name}`, logDir), ...(dns ? { dnsConfig: dns } : {}) };
        const id = await cc().runPodSandbox(config, "runc");
        const theirs = podFilePaths(await new CriRoot(get().address, new Logger()).get(), id);
        const ours = podFilePaths(scratch, id);
        await writePodFiles(ours, config);
        try {
          assert.deepEqual(snapshot(ours), snapshot(theirs));
        } finally {
          await cc().stopPodSandbox(id);
          await cc().removePodSandbox(id);
        }
        assert.equal(existsSync(theirs.dir), false, "containerd removes the pod's directory with the pod");
      });
    }
  });
}

for (const v of VERSIONS) if (v === "1.7" || v === "2.1") filesSuite(v);
