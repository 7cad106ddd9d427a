// Pod churn over CRI on containerd 2.1 (issue 8, item 1): 50 pods with one container each, started, stopped
// and removed like kubelet does, four at a time. containerd 2.x's exit handler deletes the task and closes
// that task's connection as soon as /tasks/exit arrives; a Kill answered after its exit was published came
// back as `failed to kill container ...: ttrpc: closed` from StopContainer or StopPodSandbox. Every call
// here must succeed, and nothing may be left behind.
// Under light load the race is rare, so a second loop makes it certain: its pods run with the runtime
// handler "slow", whose runc is test/fixtures/slow-runc with `kill` returning only once containerd had the
// task deleted (or after 1 s). A shim that publishes the exit before answering the Kill fails there every time.
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, suite, test, type TestContext } from "node:test";
import { RUNTIME, VERSIONS, mountsUnder, startContainerd, type Containerd } from "../helpers/containerd.js";
import { CRI_NS, CriClient, cri, hostNetworkPod, shimDaemons, sleeperContainer } from "../helpers/cri.js";
import { REPO_ROOT } from "../helpers/image.js";
import { waitFor } from "../helpers/wait.js";

const PODS = 50;
const SLOW_PODS = 12;
const PARALLEL = 4;
const RT = `plugins."io.containerd.cri.v1.runtime".containerd.runtimes`;

if (VERSIONS.includes("2.1")) {
  void suite(`CRI pod churn (containerd 2.1, ${RUNTIME})`, { timeout: 300_000 }, () => {
    let c: Containerd | undefined;
    let client: CriClient | undefined;
    let slowDir = "";
    const get = (): Containerd => { if (!c) throw new Error("containerd 2.1 did not start"); return c; };
    const cc = (): CriClient => { if (!client) throw new Error("no CRI client"); return client; };

    before(async () => {
      slowDir = await mkdtemp(path.join(tmpdir(), "churn-runc-"));
      const binary = path.join(slowDir, "runc");
      symlinkSync(path.join(REPO_ROOT, "test", "fixtures", "slow-runc"), binary);
      writeFileSync(path.join(slowDir, "kill-waits-delete"), "");
      const extraConfig = `[${RT}.slow]\n  runtime_type = "${RUNTIME}"\n[${RT}.slow.options]\n  BinaryName = "${binary}"\n`;
      c = await startContainerd("2.1", { cri: true, namespace: CRI_NS, images: ["busybox", "pause"], extraConfig });
      client = await CriClient.connect(c.address);
    });
    after(async () => {
      client?.close();
      await c?.stop();
      if (slowDir) await rm(slowDir, { recursive: true, force: true });
    });

    /** One pod's whole life. Even pods stop their container with SIGKILL at once, odd ones with SIGTERM. */
    async function cycle(i: number, handler = ""): Promise<void> {
      const logDir = path.join(get().dir, "pods", `churn-${i}`);
      await mkdir(logDir, { recursive: true });
      const config = hostNetworkPod(`churn-${i}`, logDir);
      const step = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
        try {
          return await f();
        } catch (err) {
          throw new Error(`pod ${i}: ${what}: ${(err as Error).message}`);
        }
      };
      const pod = await step("RunPodSandbox", () => cc().runPodSandbox(config, handler));
      // The shell says "ready" once its TERM trap is set (a pid 1 without a handler ignores SIGTERM).
      const app = { ...sleeperContainer(`app-${i}`), command: ["sh", "-c", "trap 'exit 0' TERM; echo ready; sleep 1000 & wait"] };
      const id = await step("CreateContainer", () => cc().createContainer(pod, app, config));
      await step("StartContainer", () => cc().startContainer(id));
      const log = path.join(logDir, `app-${i}.log`);
      if (i % 2 === 1) {
        await step("the container's ready line", () => waitFor(() => existsSync(log) && readFileSync(log, "utf8").includes("ready"), { what: log }));
      }
      await step("StopContainer", () => cc().stopContainer(id, i % 2 === 0 ? 0 : 10));
      const st = await step("ContainerStatus", () => cc().containerStatus(id));
      assert.equal(st.status?.state, cri.ContainerState.CONTAINER_EXITED, `pod ${i}: container not exited`);
      assert.equal(st.status?.exitCode, i % 2 === 0 ? 137 : 0, `pod ${i}: exit code`);
      await step("RemoveContainer", () => cc().removeContainer(id));
      await step("StopPodSandbox", () => cc().stopPodSandbox(pod));
      await step("RemovePodSandbox", () => cc().removePodSandbox(pod));
    }

    /** Runs pods `from`..`to`-1, PARALLEL at a time; returns the errors. */
    async function churn(from: number, to: number, handler = ""): Promise<string[]> {
      const errors: string[] = [];
      let next = from;
      const worker = async (): Promise<void> => {
        for (let i = next++; i < to; i = next++) {
          await cycle(i, handler).catch((err: Error) => { errors.push(err.message); });
        }
      };
      await Promise.all(Array.from({ length: PARALLEL }, worker));
      return errors;
    }

    async function lostReplies(): Promise<string[]> {
      return (await get().logs()).split("\n").filter((l) => /ttrpc: closed/.test(l));
    }

    void test(`${PODS} pods with a container each are started, stopped and removed without an error`, async (t: TestContext) => {
      const t0 = performance.now();
      const errors = await churn(0, PODS);
      t.diagnostic(`timing: ${PODS} pod cycles, ${PARALLEL} at a time, in ${Math.round(performance.now() - t0)} ms`);
      assert.deepEqual(errors, [], `${errors.length} of ${PODS} pods failed:\n${errors.join("\n")}\n${get().logTail(40)}`);
      assert.deepEqual(await lostReplies(), [], "containerd logged lost ttrpc replies");
    });

    void test(`${SLOW_PODS} pods whose runc kill returns only after containerd deleted the task: no Kill reply is lost`, async (t: TestContext) => {
      const t0 = performance.now();
      const errors = await churn(PODS, PODS + SLOW_PODS, "slow");
      t.diagnostic(`timing: ${SLOW_PODS} slow pod cycles, ${PARALLEL} at a time, in ${Math.round(performance.now() - t0)} ms`);
      assert.deepEqual(errors, [], `${errors.length} of ${SLOW_PODS} pods failed:\n${errors.join("\n")}\n${get().logTail(40)}`);
      assert.deepEqual(await lostReplies(), [], "containerd logged lost ttrpc replies");
    });

    void test("leaves no pod, shim, mount or bundle behind", async () => {
      assert.deepEqual(await cc().listPodSandbox(), []);
      assert.deepEqual(await cc().listContainers(), []);
      const cd = get();
      const tasks = path.join(cd.state, "io.containerd.runtime.v2.task", CRI_NS);
      const left = () => ({
        daemons: shimDaemons(cd),
        mounts: mountsUnder(cd.dir),
        bundles: existsSync(tasks) ? readdirSync(tasks) : [],
      });
      try {
        await waitFor(() => { const l = left(); return l.daemons.length + l.mounts.length + l.bundles.length === 0; },
          { timeoutMs: 20_000, what: "shims, mounts and bundles to go" });
      } catch (err) {
        throw new Error(`${(err as Error).message}: ${JSON.stringify(left())}`);
      }
    });
  });
}
