/** Runc against the real runc binary with a tiny busybox bundle. Needs root, runc and busybox-static. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, constants, copyFileSync, existsSync, openSync } from "node:fs";
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { Socket } from "node:net";
import { join } from "node:path";
import { before, suite, test, type TestContext } from "node:test";
import { Runc, readPidFile } from "../../src/runc/index.js";
import { RecordingRegistry, tmpDir, waitFor } from "./helpers.js";

const BUSYBOX = "/bin/busybox";
const isRoot = process.getuid?.() === 0;
let seq = 0;

/** Writes a bundle whose init runs `args` via busybox. */
async function makeBundle(dir: string, args: string[]): Promise<string> {
  const bundle = join(dir, "bundle");
  await mkdir(join(bundle, "rootfs", "bin"), { recursive: true });
  copyFileSync(BUSYBOX, join(bundle, "rootfs", "bin", "busybox"));
  await symlink("busybox", join(bundle, "rootfs", "bin", "sh"));
  execFileSync("runc", ["spec", "--bundle", bundle]);
  const config = JSON.parse(await readFile(join(bundle, "config.json"), "utf8")) as {
    process: { args: string[]; terminal: boolean };
    root: { path: string };
  };
  config.process.args = args;
  config.process.terminal = false;
  config.root.path = "rootfs";
  await writeFile(join(bundle, "config.json"), JSON.stringify(config));
  return bundle;
}

/** A FIFO opened at both ends, which behaves as a pipe: a nonblocking reader socket and a writer fd. */
function fifoPipe(t: TestContext, dir: string, name: string): { reader: Socket; w: number; output(): string } {
  const path = join(dir, name);
  execFileSync("mkfifo", [path]);
  const r = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const w = openSync(path, constants.O_WRONLY);
  const reader = new Socket({ fd: r, readable: true, writable: false });
  let text = "";
  reader.on("data", (b: Buffer) => (text += b.toString()));
  t.after(() => reader.destroy());
  return { reader, w, output: () => text };
}

/** A runc over a fresh root, with a container id unique to this process. */
async function setup(t: TestContext, args: string[]) {
  const dir = await tmpDir(t, "runc-real-");
  const registry = new RecordingRegistry();
  const runc = new Runc({ root: join(dir, "root"), registry });
  const bundle = await makeBundle(dir, args);
  const id = `tsrunc-${process.pid}-${++seq}`;
  const logFile = join(bundle, "log.json");
  t.after(async () => {
    await runc.delete(id, { force: true, logFile }).catch(() => undefined);
  });
  return { dir, registry, runc, bundle, id, logFile };
}

async function stoppedState(runc: Runc, id: string, logFile: string) {
  return waitFor("container to stop", async () => {
    const s = await runc.state(id, { logFile });
    return s.status === "stopped" ? s : undefined;
  });
}

void suite("Runc with the real runc", { skip: isRoot ? false : "needs root" }, () => {
  before(() => {
    try {
      execFileSync("runc", ["--version"]);
    } catch {
      throw new Error("runc is not on PATH: install the Debian package 'runc' to run these tests");
    }
    if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing: install the Debian package 'busybox-static'`);
  });

  void test("parses the installed runc's version", async () => {
    const v = await new Runc({ root: "/nonexistent" }).version();
    assert.match(v.runc, /^\d+\.\d+\.\d+/);
    assert.ok(v.spec !== undefined && /^\d+\.\d+/.test(v.spec), JSON.stringify(v));
  });

  void test("runs a container through create, start, ps, state, kill and delete", async (t) => {
    const { dir, registry, runc, bundle, id, logFile } = await setup(t, ["/bin/sh", "-c", "echo hello; exec /bin/busybox sleep 1000"]);
    const out = fifoPipe(t, dir, "stdout");
    const pidFile = join(bundle, "init.pid");
    try {
      await runc.create(id, { bundle, pidFile, stdio: ["ignore", out.w, out.w], logFile });
    } finally {
      closeSync(out.w);
    }
    const pid = await readPidFile(pidFile);
    assert.deepEqual(((s) => [s.status, s.pid])(await runc.state(id, { logFile })), ["created", pid]);

    await runc.start(id, { logFile });
    await waitFor("hello on stdout", async () => (out.output().includes("hello") ? true : undefined));
    assert.deepEqual(await runc.ps(id, { logFile }), [pid]);
    assert.equal((await runc.state(id, { logFile })).status, "running");

    await runc.kill(id, 9, { logFile });
    assert.equal((await stoppedState(runc, id, logFile)).pid, 0);
    await assert.rejects(runc.kill(id, 9, { logFile }), { code: "NotFound", message: "runc kill failed: container not running" });

    await runc.delete(id, { logFile });
    await assert.rejects(runc.delete(id, { logFile }), { code: "NotFound" });
    await assert.rejects(runc.state(id, { logFile }), { code: "NotFound" });
    assert.equal(registry.owned.size, 0);
    assert.ok(registry.events.length >= 20 && registry.events.length % 2 === 0);
  });

  void test("runs an exec with its own pipes and log, and maps its failure to Unknown", async (t) => {
    const { dir, runc, bundle, id, logFile } = await setup(t, ["/bin/busybox", "sleep", "1000"]);
    await runc.create(id, { bundle, pidFile: join(bundle, "init.pid"), logFile });
    await runc.start(id, { logFile });

    const out = fifoPipe(t, dir, "exec-stdout");
    const spec = { args: ["/bin/busybox", "echo", "hi from exec"], cwd: "/", env: ["PATH=/bin"], user: { uid: 0, gid: 0 } };
    const execPid = join(bundle, "e1.pid");
    try {
      await runc.exec(id, spec, { pidFile: execPid, stdio: ["ignore", out.w, out.w], logFile: join(dir, "e1.log") });
    } finally {
      closeSync(out.w);
    }
    assert.ok((await readPidFile(execPid)) > 0);
    await waitFor("exec output", async () => (out.output().includes("hi from exec") ? true : undefined));

    const bad = { ...spec, args: ["/no/such/binary"] };
    await assert.rejects(runc.exec(id, bad, { pidFile: join(bundle, "e2.pid"), logFile: join(dir, "e2.log") }), (e: Error & { code?: string }) => {
      assert.equal(e.code, "Unknown");
      assert.match(e.message, /^runc exec failed: .*\/no\/such\/binary/);
      return true;
    });
    await runc.kill(id, 9, { logFile });
    await stoppedState(runc, id, logFile);
  });

  void test("maps delete of an unknown container to NotFound", async (t) => {
    const dir = await tmpDir(t, "runc-real-");
    const runc = new Runc({ root: join(dir, "root") });
    await assert.rejects(runc.delete("no-such-container", { logFile: join(dir, "log.json") }), {
      code: "NotFound",
      message: "runc delete failed: container does not exist",
    });
  });
});
