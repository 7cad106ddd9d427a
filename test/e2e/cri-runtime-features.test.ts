// Which runtime_type to configure for CRI (README "Configuring containerd"). containerd 2.x's CRI asks a
// runtime handler for its OCI features (`<shim> -info`: recursive read-only mounts, user namespaces) only
// when its runtime_type is io.containerd.runc.v2 (internal/cri/server/service.go, introspectRuntimeFeatures);
// with io.containerd.ts.v2 it assumes none and refuses pods asking for them. Three handlers in one containerd:
//   test   runtime_type = "io.containerd.ts.v2"
//   tsrunc runtime_type = "io.containerd.runc.v2", runtime_path = our binary (via a wrapper that logs its runs),
//          options BinaryName = a runc wrapper that logs its verbs (the table is now containerd.runc.v1.Options)
//   runc   the Go containerd-shim-runc-v2, for reference
// 1.6 and 1.7 never introspect: there the runc.v2 + runtime_path handler only has to run our shim.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, suite, test } from "node:test";
import { SHIM_BINARY, VERSIONS, startContainerd, type Containerd, type ContainerdVersion } from "../helpers/containerd.js";
import { criRuntimeToml } from "../helpers/containerd-config.js";
import {
  CRI_NS, CriClient, CriError, cri, criTaskPids, hostNetworkPod, shimDaemons, sleeperContainer,
  type ContainerConfig, type PodSandboxConfig,
} from "../helpers/cri.js";
import { waitFor } from "../helpers/wait.js";

const TS = "io.containerd.ts.v2";

function ppid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/** Options of the mount at `target` in the mount namespace of `pid` ("ro,nosuid,..."), or undefined. */
function mountOptions(pid: number, target: string): string | undefined {
  for (const line of readFileSync(`/proc/${pid}/mountinfo`, "utf8").split("\n")) {
    const f = line.split(" ");
    if (f[4] === target) return f[5];
  }
  return undefined;
}

function runcHasRro(): boolean {
  const features = JSON.parse(execFileSync("runc", ["features"], { encoding: "utf8" })) as { mountOptions?: string[] };
  return features.mountOptions?.includes("rro") ?? false;
}

function featuresSuite(v: ContainerdVersion): void {
  const introspects = v === "2.1";
  void suite(`CRI runtime features (containerd ${v}): io.containerd.ts.v2 vs runc.v2 + runtime_path`, { timeout: 240_000 }, () => {
    let c: Containerd | undefined;
    let client: CriClient | undefined;
    let tmp = "";
    let vol = "";
    let runsLog = "";
    let runcLog = "";
    const pods: string[] = [];
    const get = (): Containerd => { if (!c) throw new Error(`containerd ${v} did not start`); return c; };
    const cc = (): CriClient => { if (!client) throw new Error("no CRI client"); return client; };
    const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);
    const runs = (): string[] => lines(runsLog);
    /** Whether the runc wrapper ran with `verb` as a word of its command line. */
    const ranRunc = (verb: string): boolean => lines(runcLog).some((l) => ` ${l} `.includes(` ${verb} `));

    /** A host-network pod on `handler`; remembered for cleanup. */
    const pod = async (name: string, handler: string): Promise<{ id: string; config: PodSandboxConfig }> => {
      const logDir = path.join(tmp, "pods", name);
      await mkdir(logDir, { recursive: true });
      const config = hostNetworkPod(name, logDir);
      const id = await cc().runPodSandbox(config, handler);
      pods.push(id);
      return { id, config };
    };
    /** The sleeper with `vol` (which holds the tmpfs `sub`) read-only at /data, recursively or not. */
    const withVolume = (name: string, recursive: boolean): ContainerConfig => ({
      ...sleeperContainer(name),
      mounts: [{ containerPath: "/data", hostPath: vol, readonly: true, recursiveReadOnly: recursive }],
    });
    const touch = async (id: string, file: string): Promise<{ exitCode: number; stderr: string }> =>
      cc().execSync(id, ["touch", file]);

    before(async () => {
      if (introspects && !runcHasRro()) throw new Error("`runc features` does not list the mount option rro; this test needs runc >= 1.1 (and kernel >= 5.12)");
      tmp = await mkdtemp("/tmp/rtf-");
      runsLog = path.join(tmp, "runs.log");
      const wrapper = path.join(tmp, "containerd-shim-ts-v2");
      await writeFile(wrapper, `#!/bin/sh\necho "$*" >> ${JSON.stringify(runsLog)}\nexec ${JSON.stringify(SHIM_BINARY)} "$@"\n`);
      await chmod(wrapper, 0o755);
      runcLog = path.join(tmp, "runc.log");
      const runc = path.join(tmp, "runc");
      await writeFile(runc, `#!/bin/sh\necho "$*" >> ${JSON.stringify(runcLog)}\nexec runc "$@"\n`);
      await chmod(runc, 0o755);
      vol = path.join(tmp, "vol");
      await mkdir(path.join(vol, "sub"), { recursive: true });
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "rtf", path.join(vol, "sub")]);
      c = await startContainerd(v, {
        cri: true, namespace: CRI_NS, images: ["busybox", "pause"], runtime: TS,
        extraConfig: criRuntimeToml(v, "tsrunc", { type: "io.containerd.runc.v2", path: wrapper, options: { BinaryName: runc } }),
      });
      client = await CriClient.connect(c.address);
    });
    after(async () => {
      for (const id of pods) {
        await cc().stopPodSandbox(id).catch(() => undefined);
        await cc().removePodSandbox(id).catch(() => undefined);
      }
      client?.close();
      await c?.stop();
      if (vol !== "") execFileSync("umount", ["-l", path.join(vol, "sub")], { stdio: "ignore" });
      if (tmp !== "") await rm(tmp, { recursive: true, force: true });
    });

    if (introspects) {
      void test("CRI Status: the runc.v2-typed handler has the features of our -info, the ts.v2 one has none", async () => {
        const handlers = new Map((await cc().status()).runtimeHandlers.map((h) => [h.name, h.features]));
        assert.equal(handlers.get("tsrunc")?.recursiveReadOnlyMounts, true, JSON.stringify([...handlers]));
        assert.ok(handlers.has("test"), JSON.stringify([...handlers]));
        assert.equal(handlers.get("test"), null, "the ts.v2 handler was introspected");
        // Same runc behind both shims: the same answer as the Go shim's.
        assert.deepEqual(handlers.get("tsrunc"), handlers.get("runc"));
        assert.ok(runs().includes("-info"), `containerd did not run our binary with -info: ${JSON.stringify(runs())}`);
        // -info read BinaryName from the containerd.runc.v1.Options containerd wrote on its stdin.
        assert.ok(ranRunc("features"), `our -info did not run the BinaryName runc: ${JSON.stringify(lines(runcLog))}`);
      });

      void test("a container asking for a recursive read-only mount on the ts.v2 handler is not run: containerd 2.1 panics", async () => {
        const { id, config } = await pod("rro-ts", "test");
        const cd = get();
        await assert.rejects(cc().createContainer(id, withVolume("rro", true), config), (err: unknown) => {
          assert.ok(err instanceof CriError, String(err));
          return true;
        });
        // Not the clean "runtime handler does not support recursive read-only mounts" refusal: the handler
        // has no features at all (never introspected), and the check dereferences them.
        await waitFor(() => cd.pid === undefined, { timeoutMs: 15_000, what: `containerd ${v} to exit` });
        const log = await cd.logs();
        assert.match(log, /panic: runtime error: invalid memory address or nil pointer dereference/,
          `containerd ${v} no longer panics here: update README "Configuring containerd" and this test\n${cd.logTail(40)}`);
        assert.match(log, /internal\/cri\/opts\/spec_linux_opts\.go/);
        client?.close();
        client = undefined;
        await cd.restart();
        client = await CriClient.connect(cd.address);
        await cc().stopPodSandbox(id);
        await cc().removePodSandbox(id);
        pods.splice(pods.indexOf(id), 1);
        await waitFor(() => shimDaemons(cd).length === 0, { timeoutMs: 15_000, what: "the ts.v2 pod's shim to exit" });
      });
    }

    if (v === "1.6") {
      // Debian 12's 1.6.20: the client's WithRuntimePath sets a field NewTask never sends (fixed in 1.6.21).
      void test("runtime_path is ignored: the runc.v2-typed pod runs on the Go containerd-shim-runc-v2", async () => {
        const { id, config } = await pod("tsrunc-16", "tsrunc");
        const app = await cc().createContainer(id, sleeperContainer("app"), config);
        await cc().startContainer(app);
        const goShims = shimDaemons(get(), "containerd-shim-runc-v2");
        assert.equal(goShims.length, 1, `Go shim daemons: ${JSON.stringify(goShims)}`);
        const pids = await criTaskPids(get());
        for (const task of [id, app]) assert.equal(ppid(pids.get(task)!), goShims[0], `parent of ${task}'s init`);
        assert.deepEqual(shimDaemons(get()), [], "our shim serves nothing");
        assert.deepEqual(runs(), [], "containerd never ran our binary");
      });
      return;
    }

    void test(introspects
      ? "runc.v2 + runtime_path runs it under our shim, the mount read-only down to its submounts"
      : "runc.v2 + runtime_path runs the pod under our shim; recursive_read_only is not known (plain ro)", async () => {
      const { id, config } = await pod("rro-tsrunc", "tsrunc");
      const rro = await cc().createContainer(id, withVolume("rro", true), config);
      await cc().startContainer(rro);
      const plain = await cc().createContainer(id, withVolume("plain", false), config);
      await cc().startContainer(plain);

      const daemons = shimDaemons(get());
      assert.equal(daemons.length, 1, `our shim daemons: ${JSON.stringify(daemons)}`);
      assert.deepEqual(shimDaemons(get(), "containerd-shim-runc-v2"), [], "no Go shim serves the pod");
      const pids = await criTaskPids(get());
      for (const task of [id, rro, plain]) assert.equal(ppid(pids.get(task)!), daemons[0], `parent of ${task}'s init`);
      assert.ok(runs().some((r) => r.endsWith(" start")), `containerd did not start our binary: ${JSON.stringify(runs())}`);
      assert.ok(ranRunc("create"), `the containers were not created with the BinaryName runc: ${JSON.stringify(lines(runcLog))}`);
      const ci = await get().ctr(["containers", "info", rro], { ns: CRI_NS });
      assert.equal(ci.code, 0, ci.stderr);
      const info = JSON.parse(ci.stdout) as { Runtime: { Name: string } };
      assert.equal(info.Runtime.Name, "io.containerd.runc.v2", "what tools reading the container record see");
      const bundle = path.join(get().state, "io.containerd.runtime.v2.task", CRI_NS, id);
      assert.equal(readFileSync(path.join(bundle, "shim-binary-path"), "utf8"), path.join(tmp, "containerd-shim-ts-v2"));

      for (const task of [rro, plain]) {
        const r = await touch(task, "/data/top");
        assert.notEqual(r.exitCode, 0, `${task}: /data is writable`);
        assert.match(r.stderr, /Read-only file system/);
      }
      const rroSub = await touch(rro, "/data/sub/x");
      const plainSub = await touch(plain, "/data/sub/y");
      assert.equal(plainSub.exitCode, 0, `a plain ro bind leaves the submount writable: ${plainSub.stderr}`);
      const subOpts = mountOptions(pids.get(rro)!, "/data/sub");
      if (introspects) {
        assert.notEqual(rroSub.exitCode, 0, "the recursive read-only mount left /data/sub writable");
        assert.match(rroSub.stderr, /Read-only file system/);
        assert.match(subOpts ?? "", /^ro\b/, `/data/sub mount options ${subOpts}`);
      } else {
        assert.equal(rroSub.exitCode, 0, `containerd ${v} now honours recursive_read_only: update README and this test`);
      }
      if (!introspects) assert.ok(!runs().includes("-info"), `containerd ${v} ran -info: ${JSON.stringify(runs())}`);
    });

    void test("after a containerd restart the pod is still ours and stops and goes away", async () => {
      const id = pods.at(-1)!;
      const cd = get();
      client?.close();
      client = undefined;
      await cd.restart();
      client = await CriClient.connect(cd.address);
      const listed = await cc().listContainers({ podSandboxId: id });
      assert.equal(listed.length, 2);
      assert.ok(listed.every((x) => x.state === cri.ContainerState.CONTAINER_RUNNING), JSON.stringify(listed));
      const daemons = shimDaemons(cd);
      assert.equal(daemons.length, 1);
      const r = await cc().execSync(listed[0]!.id, ["echo", "still here"]);
      assert.deepEqual([r.exitCode, r.stdout], [0, "still here\n"]);
      for (const x of listed) {
        await cc().stopContainer(x.id, 0);
        await cc().removeContainer(x.id);
      }
      await cc().stopPodSandbox(id);
      await cc().removePodSandbox(id);
      await waitFor(() => shimDaemons(cd).length === 0, { timeoutMs: 15_000, what: "our shim daemon to exit" });
      assert.ok(!existsSync(path.join(cd.state, "io.containerd.runtime.v2.task", CRI_NS, id)), "the pod's bundle is gone");
      assert.deepEqual(shimDaemons(cd, "containerd-shim-runc-v2"), []);
    });
  });
}

for (const v of VERSIONS) featuresSuite(v);
