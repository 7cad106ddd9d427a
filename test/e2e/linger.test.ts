// The namespace daemon's linger (issue 19, `linger_ms`, docs/grouping.md) under real containerd, with `ctr run
// --rm` as a churning namespace would run it: a second run within the linger is served by the same daemon (no
// new boot); after the linger with no pod the daemon is gone and leaves no socket; with `linger_ms = 0` the
// daemon goes with its last pod, as before the linger existed. Grouping comes from SHIM_TS_GROUPING in
// containerd's environment and the linger from a config file each run names (`--runtime-config-path`).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, suite, test } from "node:test";
import { busyboxImageTar } from "../helpers/image.js";
import {
  BUSYBOX_REF, RUNTIME, VERSIONS, ctrBinary, shimSocketPath, startContainerd, type Containerd, type ContainerdVersion, type CtrResult,
} from "../helpers/containerd.js";
import { alive, daemonsFor } from "../helpers/shim.js";
import { waitFor, withTimeout } from "../helpers/wait.js";

if (RUNTIME !== "io.containerd.ts.v2") throw new Error(`linger tests our shim only (E2E_RUNTIME=${RUNTIME})`);

/** Longer than a `ctr run --rm` takes on a loaded machine, so that the next run comes within it. */
const LINGER_MS = 8000;

function ppid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

function lingerSuite(v: ContainerdVersion): void {
  void suite(`namespace daemon linger (containerd ${v})`, { timeout: 240_000 }, () => {
    let c: Containerd | undefined;
    const get = (): Containerd => { if (!c) throw new Error(`containerd ${v} did not start`); return c; };
    const config = (name: string, text: string): string => { const p = path.join(get().dir, name); writeFileSync(p, text); return p; };

    before(async () => {
      // The config files decide the linger here, not the lane's SHIM_TS_LINGER_MS (scripts/test.sh).
      c = await startContainerd(v, { env: { SHIM_TS_GROUPING: "namespace", SHIM_TS_LINGER_MS: "" } });
      for (const ns of ["lg-on", "lg-off"]) {
        const r = await c.ctr(["images", "import", "--all-platforms", await busyboxImageTar()], { ns, timeoutMs: 60_000 });
        assert.equal(r.code, 0, r.stderr);
      }
    });
    after(async () => { await c?.stop(); });

    /**
     * `ctr run --rm` of a container that waits for a line on its stdin: while it waits, the daemon serving it
     * is read off the container's init (its parent); then the line ends it. Returns that daemon's pid, and how
     * long the run took until its task was running.
     */
    async function runOnce(ns: string, id: string, cfg: string): Promise<{ daemon: number; upMs: number }> {
      const cd = get();
      const t0 = Date.now();
      const ctr = spawn(ctrBinary(v), ["--address", cd.address, "-n", ns, "run", "--rm", "--runtime", RUNTIME, "--runtime-config-path", cfg,
        BUSYBOX_REF, id, "head", "-n", "1"], { stdio: ["pipe", "pipe", "pipe"] });
      let out = "";
      ctr.stdout.setEncoding("utf8").on("data", (d: string) => { out += d; });
      ctr.stderr.setEncoding("utf8").on("data", (d: string) => { out += d; });
      const done = new Promise<CtrResult>((resolve) => ctr.once("close", (code, signal) => resolve({ stdout: out, stderr: "", code, signal })));
      try {
        const init = await waitFor(async () => {
          const r = await cd.ctr(["task", "ls"], { ns });
          const line = r.stdout.split("\n").find((l) => l.trim().split(/\s+/)[0] === id && l.includes("RUNNING"));
          return line === undefined ? undefined : Number(line.trim().split(/\s+/)[1]);
        }, { timeoutMs: 30_000, what: `${id} to run` });
        const upMs = Date.now() - t0;
        const daemon = ppid(init);
        ctr.stdin.end("go\n");
        const r = await withTimeout(done, 30_000, `ctr run --rm ${id} to return`);
        assert.equal(r.code, 0, `ctr run --rm ${id}: ${out}\n${cd.logTail(20)}`);
        assert.equal(out, "go\n");
        return { daemon, upMs };
      } finally {
        ctr.kill("SIGKILL");
      }
    }

    /** Nothing of namespace `ns`'s daemon is left: the process, its socket (and no temporary name of it), a bundle naming it. */
    function leftovers(ns: string, pid: number): string[] {
      const cd = get();
      const sock = shimSocketPath(cd, ns, "");
      const left: string[] = [];
      if (alive(pid)) left.push(`daemon ${pid}`);
      for (const f of readdirSync(path.dirname(sock))) if (f.startsWith(path.basename(sock))) left.push(path.join(path.dirname(sock), f));
      const bundles = path.join(cd.state, "io.containerd.runtime.v2.task", ns);
      if (existsSync(bundles)) for (const b of readdirSync(bundles)) left.push(path.join(bundles, b));
      return left;
    }

    void test("a second ctr run --rm within the linger is served by the same daemon", async (t) => {
      const cfg = config("on.toml", `linger_ms = ${LINGER_MS}\n`);
      const first = await runOnce("lg-on", "one", cfg);
      const t0 = Date.now();
      const sock = shimSocketPath(get(), "lg-on", "");
      assert.deepEqual(daemonsFor(sock), [first.daemon], "the daemon lingers after its last pod, on the namespace's socket");
      const second = await runOnce("lg-on", "two", cfg);
      t.diagnostic(`figure: containerd ${v}: ctr run to a running task: ${first.upMs} ms booting a daemon, ${second.upMs} ms joining the lingering one; the second task ran ${Date.now() - t0} ms after the first run returned`);
      assert.equal(second.daemon, first.daemon, "the second run joined the lingering daemon");
    });

    void test("after the linger with no pod, the daemon is gone and leaves no socket", async (t) => {
      const cd = get();
      const sock = shimSocketPath(cd, "lg-on", "");
      const [pid] = daemonsFor(sock);
      assert.ok(pid !== undefined && alive(pid), "the daemon still lingers after the second run");
      const t0 = Date.now();
      await waitFor(() => leftovers("lg-on", pid).length === 0, { timeoutMs: LINGER_MS + 15_000, what: "the lingering daemon to exit and remove its socket" })
        .catch((err: Error) => assert.fail(`${err.message}: ${JSON.stringify(leftovers("lg-on", pid))}\n${cd.logTail(20)}`));
      t.diagnostic(`gone ${Date.now() - t0} ms after the second run returned (linger ${LINGER_MS} ms)`);
      assert.ok(Date.now() - t0 >= LINGER_MS / 2, `gone after ${Date.now() - t0} ms: it did not linger`);
    });

    // ctr run --rm returns once containerd's Shutdown was answered: with no linger the daemon is leaving by then,
    // so the second run finds it gone or refusing (join.ts) and gets a new one; with a linger it would join.
    void test("linger_ms = 0: a second run right after the first gets a new daemon, and each goes with its pod", async (t) => {
      const cd = get();
      const cfg = config("off.toml", "linger_ms = 0\n");
      const first = await runOnce("lg-off", "one", cfg);
      const second = await runOnce("lg-off", "two", cfg);
      t.diagnostic(`figure: containerd ${v}: ctr run to a running task with no linger: ${first.upMs} ms, then ${second.upMs} ms`);
      assert.notEqual(second.daemon, first.daemon, "a new daemon for the second run");
      const left = () => [...leftovers("lg-off", first.daemon), ...leftovers("lg-off", second.daemon)];
      await waitFor(() => left().length === 0, { timeoutMs: 10_000, what: "both daemons to exit with their pods" })
        .catch((err: Error) => assert.fail(`${err.message}: ${JSON.stringify(left())}\n${cd.logTail(20)}`));
    });
  });
}

for (const v of VERSIONS) lingerSuite(v);
