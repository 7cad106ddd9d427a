// docs/debugging.md, walked step by step against a private containerd (1.6, 1.7, 2.1): -v and -info,
// `ctr shim` against the shim's socket, `start` and `delete` run by hand in a container's bundle, the SIGUSR1
// state dump in containerd's log (containerd at info level, so the shim has no -debug), no TCP port, and the
// shim's debug lines when containerd logs at debug.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, readlinkSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { containerd as boot } from "../../src/gen/bootstrap.js";
import { RUNTIME, SHIM_BINARY, containerProcesses, mountsUnder, type Containerd } from "../helpers/containerd.js";
import { assertNoLeftovers, ctrOk, describe, perVersion, runArgs, waitStatus } from "../helpers/ctr.js";
import { tcpListeners } from "../helpers/sockets.js";
import { waitFor } from "../helpers/wait.js";

const OURS = RUNTIME === "io.containerd.ts.v2";
const skip = !OURS && "our shim only";
const bundleOf = (c: Containerd, id: string) => path.join(c.state, "io.containerd.runtime.v2.task", c.namespace, id);
const ppid = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[1]);
const argv = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);

/** containerd's log lines written by our shim for `id` (they carry runtime= and id=). */
async function shimLines(c: Containerd, id: string): Promise<string[]> {
  return (await c.logs()).split("\n").filter((l) => l.includes("runtime=io.containerd.ts.v2") && l.includes(` id=${id} `));
}

/**
 * The shim binary run by hand from `cwd`, as docs/debugging.md shows; "@containerd" in `args` stands for
 * containerd's binary. stdout is kept as bytes (`-info` and `delete` print protobuf).
 */
function shim(c: Containerd, args: string[], cwd: string): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  // Read while containerd runs (the delete step runs it after containerd was killed).
  const containerdBin = containerdBinary.get(c.version) ?? readlinkSync(`/proc/${c.pid}/exe`);
  containerdBinary.set(c.version, containerdBin);
  // With containerd's grouping, as an operator's shell would have it: the socket `start`/`delete` compute depends on it.
  const env = { ...process.env, TTRPC_ADDRESS: c.ttrpcAddress, SHIM_TS_GROUPING: c.grouping };
  const argv = args.map((a) => (a === "@containerd" ? containerdBin : a));
  return new Promise((resolve, reject) => {
    const p = spawn(SHIM_BINARY, argv, { cwd, env, stdio: ["ignore", "pipe", "pipe"], timeout: 20_000, killSignal: "SIGKILL" });
    const out: Buffer[] = [];
    let stderr = "";
    p.stdout.on("data", (b: Buffer) => out.push(b));
    p.stderr.setEncoding("utf8").on("data", (s: string) => { stderr += s; });
    p.once("error", reject);
    p.once("close", (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
  });
}
const containerdBinary = new Map<string, string>();
// The walk-through is the default mode's: `ctr shim --id` computes a container's own socket, which a grouped
// container does not have (docs/debugging.md, "Grouped containers"), so it runs with one daemon per container
// in the SHIM_TS_GROUPING=namespace lane too.
const ONE_DAEMON_PER_CONTAINER = { SHIM_TS_GROUPING: "pod" };

perVersion("docs/debugging.md", (get, v) => {
  let pid = 0;
  let shimPid = 0;
  const signalShim = (sig: NodeJS.Signals): void => {
    assert.ok(shimPid > 0, "the shim daemon was found"); // kill(0) would signal this test's process group
    process.kill(shimPid, sig);
  };

  void test("-v prints the shim's and Node's versions, -info a RuntimeInfo with the runtime's features", { skip }, async () => {
    const c = get();
    const ver = (await shim(c, ["-v"], c.dir)).stdout.toString();
    assert.match(ver, /^containerd-shim-ts-v2 \d+\.\d+\.\d+\n(node v|bun )\d+\.\d+\.\d+\n$/);
    const r = await shim(c, ["-info"], c.dir);
    assert.equal(r.code, 0, r.stderr);
    const info = boot.types.RuntimeInfo.decode(r.stdout);
    assert.equal(info.name, "io.containerd.ts.v2");
    assert.equal(info.version?.version, ver.split("\n")[0]!.split(" ")[1]);
    assert.equal(info.features?.typeUrl, "types.containerd.io/opencontainers/runtime-spec/1/features/Features");
    assert.ok("ociVersionMin" in (JSON.parse(Buffer.from(info.features!.value!).toString()) as object), "runc features JSON");
  });

  void test("ctr shim state answers from the shim's socket; ctr task ps lists the pids; ctr shim exec panics in ctr", { skip }, async () => {
    const c = get();
    await ctrOk(c, runArgs("dbg1", ["sleep", "100000"], { detach: true }));
    await waitStatus(c, "dbg1", "RUNNING");
    const st = await ctrOk(c, ["shim", "--id", "dbg1", "state"]);
    const state = JSON.parse(st.stdout) as { id: string; bundle: string; pid: number; status: number };
    assert.equal(state.id, "dbg1");
    assert.equal(state.bundle, bundleOf(c, "dbg1"));
    assert.equal(state.status, 2, "RUNNING");
    pid = state.pid;
    shimPid = ppid(pid);
    assert.ok(argv(shimPid).some((a) => a.endsWith("containerd-shim-ts-v2")), `parent of ${pid} is the shim daemon`);
    await ctrOk(c, ["task", "exec", "-d", "--exec-id", "e1", "dbg1", "sleep", "100000"]);
    const ps = await ctrOk(c, ["task", "ps", "dbg1"]);
    assert.match(ps.stdout, new RegExp(`^${pid}\\s+-$`, "m"), ps.stdout);
    assert.match(ps.stdout, /^\d+\s+\S.*e1/m, `the exec's pid with its exec id:\n${ps.stdout}`);
    const spec = path.join(c.dir, "proc.json");
    await import("node:fs/promises").then((fs) => fs.writeFile(spec, JSON.stringify({ args: ["true"], cwd: "/", user: { uid: 0, gid: 0 } })));
    const f = (n: string) => path.join(c.dir, `x-${n}`);
    const ex = await c.ctr(["shim", "--id", "dbg1", "exec", "--stdin", f("in"), "--stdout", f("out"), "--stderr", f("err"), "--spec", spec, "x1"]);
    assert.equal(ex.code, 2, describe(c, "ctr shim exec", ex));
    assert.match(ex.stderr, /panic: v is not a pointer to a type/, describe(c, "ctr shim exec", ex));
    assert.equal((JSON.parse((await ctrOk(c, ["shim", "--id", "dbg1", "state"])).stdout) as { pid: number }).pid, pid);
    const start = await c.ctr(["shim", "--id", "dbg1", "start", "dbg1"]);
    assert.match(start.stderr, /FailedPrecondition desc = Cannot start task "dbg1" in running state/, describe(c, "ctr shim start", start));
    const none = await c.ctr(["shim", "--id", "nope", "state"]);
    assert.match(none.stderr, v === "2.1" ? /fail to connect to container shim with sockets/ : /fail to connect to container nope's shim/, none.stderr);
    if (v === "2.1") {
      const address = readFileSync(path.join(bundleOf(c, "dbg1"), "address"), "utf8");
      const byAddr = await ctrOk(c, ["shim", "--shim-address", address, "state", "--task-id", "dbg1"]);
      assert.equal((JSON.parse(byAddr.stdout) as { pid: number }).pid, pid);
    }
  });

  void test("start run by hand in a running container's bundle prints its address and starts no second daemon", { skip }, async () => {
    const c = get();
    const bundle = bundleOf(c, "dbg1");
    const r = await shim(c, ["-namespace", c.namespace, "-address", c.address, "-publish-binary", "@containerd", "-id", "dbg1", "start"], bundle);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    const address = r.stdout.toString();
    assert.equal(address, readFileSync(path.join(bundle, "address"), "utf8"));
    assert.match(address, /^unix:\/\/\/run\/containerd\/s\/[0-9a-f]{64}$/);
    const daemon = argv(shimPid).join(" ");
    assert.ok(daemon.includes(`-socket ${address.slice("unix://".length)}`), daemon);
    assert.ok(!argv(shimPid).includes("-debug"), "containerd at info level starts the shim without -debug");
  });

  void test("SIGUSR1 writes the state dump into containerd's log at info level and opens no TCP port", { skip }, async () => {
    const c = get();
    assert.deepEqual(tcpListeners(shimPid), []);
    signalShim("SIGUSR1");
    const lines = await waitFor(async () => {
      const l = await shimLines(c, "dbg1");
      return l.some((x) => x.includes('msg="state dump: end"')) ? l : undefined;
    }, { what: "the state dump in containerd's log" }).catch((err: Error) => assert.fail(`${err.message}\n${c.logTail(20)}`));
    const dump = lines.filter((l) => l.includes('msg="state dump: '));
    assert.ok(dump.every((l) => l.includes("level=info")), dump.join("\n"));
    assert.match(dump.find((l) => l.includes("state dump: begin")) ?? "", new RegExp(`pid=${shimPid} .*containers=1 execs=1 `));
    assert.match(dump.find((l) => l.includes("state dump: container")) ?? "",
      new RegExp(`container=dbg1 bundle=${bundleOf(c, "dbg1")} status=running pid=${pid} oci_runtime=runc execs=1 live_execs=1`));
    assert.match(dump.find((l) => l.includes("state dump: exec")) ?? "", /container=dbg1 exec=e1 status=running pid=\d+/);
    assert.match(dump.find((l) => l.includes("state dump: events")) ?? "", new RegExp(`address=${c.ttrpcAddress} pending=0 .*connected=true`));
    assert.ok(!lines.some((l) => l.includes("level=debug")), "no debug lines without -debug");
    assert.deepEqual(tcpListeners(shimPid), [], "no TCP port (Node's inspector) after SIGUSR1");
    assert.equal(await taskPid(c, "dbg1"), pid, "the daemon keeps serving");
  });

  void test("delete run by hand after containerd and the shim died cleans up the container and prints a DeleteResponse", { skip }, async () => {
    const c = get();
    const bundle = bundleOf(c, "dbg1");
    const socket = readFileSync(path.join(bundle, "address"), "utf8").slice("unix://".length);
    const rootfs = path.join(bundle, "rootfs");
    assert.ok(mountsUnder(rootfs).length > 0, "rootfs mounted while the container runs");
    await c.kill9();
    signalShim("SIGKILL");
    await waitFor(() => !existsSync(`/proc/${shimPid}`), { what: "the shim daemon to go" });
    assert.ok(existsSync(`/proc/${pid}`), "the container outlives its shim");
    const r = await shim(c, ["-namespace", c.namespace, "-address", c.address, "-publish-binary", "@containerd", "-id", "dbg1", "-bundle", bundle, "delete"], bundle);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    const res = boot.task.v2.DeleteResponse.decode(r.stdout);
    assert.equal(res.pid, pid);
    assert.equal(res.exitStatus, 137);
    assert.ok(Math.abs(Number(res.exitedAt?.seconds) - Date.now() / 1000) < 60, "exited_at is now");
    await waitFor(() => containerProcesses(c.namespace, "dbg1").length === 0, { what: "the container's processes to go" });
    assert.deepEqual(mountsUnder(rootfs), []);
    assert.equal(existsSync(socket), false, "the dead shim's socket is removed");
    // containerd, restarted, finds the bundle without a shim and cleans it up.
    await c.restart();
    await waitFor(async () => (await c.ctr(["task", "ls"])).stdout.split("\n").every((l) => !l.startsWith("dbg1 ")), { what: "dbg1 to leave `ctr task ls`" });
    await ctrOk(c, ["container", "delete", "dbg1"]);
    await assertNoLeftovers(c, "dbg1");
  });
}, { logLevel: "info", env: ONE_DAEMON_PER_CONTAINER });

perVersion("docs/debugging.md with containerd at debug level", (get) => {
  void test("the shim gets -debug: start's and the daemon's debug lines reach containerd's log", { skip }, async () => {
    const c = get();
    await ctrOk(c, runArgs("dbg2", ["true"]));
    const lines = await shimLines(c, "dbg2");
    assert.ok(lines.some((l) => l.includes('level=debug msg="shim daemon started"')), `start's debug line:\n${lines.join("\n")}`);
    assert.ok(lines.some((l) => l.includes('level=debug msg="runc call"') && l.includes(" create ")), `the daemon's runc calls:\n${lines.join("\n")}`);
    await assertNoLeftovers(c, "dbg2");
  });
});

async function taskPid(c: Containerd, id: string): Promise<number> {
  const r = await ctrOk(c, ["shim", "--id", id, "state"]);
  return (JSON.parse(r.stdout) as { pid: number }).pid;
}
