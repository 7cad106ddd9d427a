/**
 * Drives a TaskService in-process, with a real reaper and real runc, no containerd: requests are
 * encoded and decoded as containerd would send them, events are recorded in order.
 */
import { after, before } from "node:test";
import { execFileSync } from "node:child_process";
import { constants as fsc, copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { containerd } from "../../src/gen/task.js";
import { Logger } from "../../src/log.js";
import { resolveShimConfig } from "../../src/shim/config.js";
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

/** A TaskService with a recording publisher and a helper to call its methods by name. */
export function makeService() {
  setChildSubreaper();
  const reaper = new Reaper();
  reaper.start();
  // Signal handles do not keep Node's loop alive; the daemon has its listening socket, the test this.
  const keepAlive = setInterval(() => {}, 1 << 30);
  const events: Recorded[] = [];
  const ns = `tstest${process.pid}`;
  const svc = new TaskService({
    namespace: ns,
    reaper,
    publisher: { publish: (topic, _t, value) => events.push({ topic, value }) },
    log: new Logger(),
    shimPid: process.pid,
    // As the daemon does (src/shim/serve.ts), without the host's SHIM_TS_CONFIG/SHIM_TS_GROUPING.
    loadConfig: (configPath) => resolveShimConfig({}, configPath),
  });
  const methods = svc.methods();
  const T = containerd.task.v2 as unknown as Record<string, { encode(m: object): { finish(): Uint8Array }; decode(b: Uint8Array): unknown }>;
  async function call<R>(method: string, reqType: string, resType: string | null, req: object, signal?: AbortSignal): Promise<R> {
    const ctx: CallContext = { signal: signal ?? new AbortController().signal, metadata: new Map(), service: "containerd.task.v2.Task", method };
    const out = await methods[method]!.call(T[reqType]!.encode(req).finish(), ctx);
    return (resType === null ? {} : T[resType]!.decode(out)) as R;
  }
  return { svc, reaper, events, call, ns, topics: () => events.map((e) => e.topic), stop: () => {
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
export function useService(): { h: ReturnType<typeof makeService>; root: ReturnType<typeof tmpRoot> } {
  const ctx = {} as { h: ReturnType<typeof makeService>; root: ReturnType<typeof tmpRoot> };
  before(() => {
    requireRootAndRunc();
    ctx.h = makeService();
    ctx.root = tmpRoot();
  });
  after(() => {
    ctx.h?.stop();
    ctx.root?.cleanup();
  });
  return ctx;
}
