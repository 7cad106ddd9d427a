/**
 * Drives a TaskService in-process, with a real reaper and real runc, no containerd: requests are
 * encoded and decoded as containerd would send them, events are recorded in order.
 */
import { after, before } from "node:test";
import { execFileSync } from "node:child_process";
import { constants as fsc, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { containerd as boot } from "../../src/gen/bootstrap.js";
import { containerd } from "../../src/gen/task.js";
import { Logger } from "../../src/log.js";
import { resolveShimConfig } from "../../src/shim/config/config.js";
import { Reaper, setChildSubreaper } from "../../src/sys/index.js";
import { TaskService } from "../../src/task/index.js";
import type { CallContext } from "../../src/ttrpc/index.js";

export const E = containerd.events;

export function requireRootAndRunc(): void {
  if (process.getuid?.() !== 0) throw new Error("this test needs root (runc creates namespaces and cgroups)");
  for (const bin of ["runc", "/bin/busybox"]) {
    try {
      execFileSync(bin.startsWith("/") ? "test" : "which", bin.startsWith("/") ? ["-x", bin] : [bin]);
    } catch {
      throw new Error(`this test needs ${bin} (apt-get install runc busybox-static)`);
    }
  }
}

export interface Recorded {
  topic: string;
  value: Uint8Array;
}

/**
 * A TaskService with a recording publisher and a helper to call its methods by name. `timeline` holds
 * every published topic and, like a ttrpc connection would write it, `reply <Method>` once a call's
 * answer is out (afterReply callbacks run right after).
 */
export function makeService(opts: { exitLimits?: ConstructorParameters<typeof TaskService>[0]["exitLimits"] } = {}) {
  setChildSubreaper();
  const reaper = new Reaper();
  reaper.start();
  // Signal handles do not keep Node's loop alive; the daemon has its listening socket, the test this.
  const keepAlive = setInterval(() => {}, 1 << 30);
  const events: Recorded[] = [];
  const timeline: string[] = [];
  const ns = `tstest${process.pid}`;
  const svc = new TaskService({
    namespace: ns,
    reaper,
    publisher: { publish: (topic, _t, value) => { events.push({ topic, value }); timeline.push(topic); } },
    log: new Logger(),
    shimPid: process.pid,
    // As the daemon does (src/shim/daemon/serve.ts), without the host's SHIM_TS_CONFIG/SHIM_TS_GROUPING.
    loadConfig: (configPath) => resolveShimConfig({}, configPath),
    exitLimits: opts.exitLimits,
  });
  const methods = svc.methods();
  const T = containerd.task.v2 as unknown as Record<string, { encode(m: object): { finish(): Uint8Array }; decode(b: Uint8Array): unknown }>;
  async function call<R>(method: string, reqType: string, resType: string | null, req: object, signal?: AbortSignal): Promise<R> {
    let replied: (() => void)[] | undefined = [];
    const afterReply = (cb: () => void) => (replied === undefined ? queueMicrotask(cb) : replied.push(cb));
    const ctx: CallContext = { signal: signal ?? new AbortController().signal, metadata: new Map(), service: "containerd.task.v2.Task", method, afterReply };
    const reply = () => {
      timeline.push(`reply ${method}`);
      const cbs = replied ?? [];
      replied = undefined;
      for (const cb of cbs) cb();
    };
    try {
      const out = await methods[method]!.call(T[reqType]!.encode(req).finish(), ctx);
      return (resType === null ? {} : T[resType]!.decode(out)) as R;
    } finally {
      reply();
    }
  }
  return { svc, reaper, events, timeline, call, ns, topics: () => events.map((e) => e.topic), stop: () => {
    reaper.stop();
    clearInterval(keepAlive);
    // Whatever a failed test left behind: force-delete its containers and the runc root.
    const runcRoot = `/run/containerd/runc/${ns}`;
    try {
      for (const id of execFileSync("runc", ["--root", runcRoot, "list", "-q"]).toString().split("\n").filter(Boolean)) {
        execFileSync("runc", ["--root", runcRoot, "delete", "--force", id]);
      }
    } catch {
      /* no root: nothing was created */
    }
    rmSync(runcRoot, { recursive: true, force: true });
    for (const ctl of readdirSync("/sys/fs/cgroup")) {
      try {
        rmdirSync(path.join("/sys/fs/cgroup", ctl, `tstest${process.pid}`));
      } catch {
        /* not there, or not a hierarchy */
      }
    }
  } };
}

/** A bundle with a busybox rootfs running `args`, stdout to a FIFO we read. */
export function makeBundle(root: string, id: string, args: string[]): { bundle: string; stdout: string; output: () => string } {
  const bundle = path.join(root, id);
  const rootfs = path.join(bundle, "rootfs");
  mkdirSync(path.join(rootfs, "bin"), { recursive: true });
  copyFileSync("/bin/busybox", path.join(rootfs, "bin/busybox"));
  for (const a of ["sh", "echo", "sleep", "true", "cat"]) symlinkSync("busybox", path.join(rootfs, "bin", a));
  execFileSync("runc", ["spec", "--bundle", bundle]);
  const spec = JSON.parse(readFileSync(path.join(bundle, "config.json"), "utf8")) as {
    process: { args: string[]; terminal: boolean };
    root: { readonly: boolean };
    linux: { cgroupsPath?: string };
  };
  spec.linux.cgroupsPath = `/tstest${process.pid}/${id}`;
  spec.process.args = args;
  spec.process.terminal = false;
  spec.root.readonly = false;
  writeFileSync(path.join(bundle, "config.json"), JSON.stringify(spec));
  const stdout = path.join(bundle, "stdout.fifo");
  execFileSync("mkfifo", [stdout]);
  // Our reader is opened first and non-blocking, as containerd's is.
  const fd = openSync(stdout, fsc.O_RDONLY | fsc.O_NONBLOCK);
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  return {
    bundle,
    stdout,
    output: () => {
      for (;;) {
        let n = 0;
        try {
          n = readSync(fd, buf, 0, buf.length, null);
        } catch {
          break; // EAGAIN: nothing buffered right now
        }
        if (n <= 0) break;
        chunks.push(Buffer.from(buf.subarray(0, n)));
      }
      return Buffer.concat(chunks).toString();
    },
  };
}

export function tmpRoot(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), "task-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Inside a suite: a TaskService and a temp root made before its tests (after checking root and runc) and
 * torn down after them. Read `.h` and `.root` from the tests.
 */
export function useService(opts: Parameters<typeof makeService>[0] = {}): { h: ReturnType<typeof makeService>; root: ReturnType<typeof tmpRoot> } {
  const ctx = {} as { h: ReturnType<typeof makeService>; root: ReturnType<typeof tmpRoot> };
  before(() => {
    requireRootAndRunc();
    ctx.h = makeService(opts);
    ctx.root = tmpRoot();
  });
  after(() => {
    ctx.h?.stop();
    ctx.root?.cleanup();
  });
  return ctx;
}

/** The repository root (where package.json is), from this compiled file's location. */
function repoRoot(): string {
  let dir = path.dirname(new URL(import.meta.url).pathname);
  while (!existsSync(path.join(dir, "package.json"))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error("Cannot find the repository root");
    dir = up;
  }
  return dir;
}

/**
 * test/fixtures/slow-runc set up in `<root>/<name>`: runtime options that make the shim use it, and
 * switches for its waits (see the fixture's header).
 */
export function slowRunc(root: string, name = "slow-runc") {
  const dir = path.join(root, name);
  mkdirSync(dir, { recursive: true });
  const binary = path.join(dir, "runc");
  symlinkSync(path.join(repoRoot(), "test", "fixtures", "slow-runc"), binary);
  const file = (f: string) => path.join(dir, f);
  const on = (f: string) => writeFileSync(file(f), "");
  const off = (f: string) => rmSync(file(f), { force: true });
  return {
    binary,
    options: { typeUrl: "containerd.runc.v1.Options", value: boot.runc.v1.Options.encode({ binaryName: binary }).finish() },
    /** `runc exec` waits (after signalling execWaiting) until releaseExec. */
    holdExec: () => { off("exec-waiting"); on("hold-exec"); },
    releaseExec: () => off("hold-exec"),
    execWaiting: () => existsSync(file("exec-waiting")),
    /** `runc kill` returns only once the signalled init was reaped. */
    killWaitsExit: (yes: boolean) => (yes ? on("kill-waits-exit") : off("kill-waits-exit")),
    calls: () => (existsSync(file("calls")) ? readFileSync(file("calls"), "utf8").split("\n").filter(Boolean) : []),
  };
}
