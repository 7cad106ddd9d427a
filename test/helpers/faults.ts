// Fault injection for e2e tests: the runc wrapper test/fixtures/fault-runc in a control directory, ctr run
// arguments that use it (for our shim and for the Go runc shim alike), and host leftovers of a namespace.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { BUSYBOX_REF, RUNTIME, containerProcesses, mountsUnder, runCapture, type Containerd } from "./containerd.js";
import { shimDaemons } from "./cri.js";
import { REPO_ROOT } from "./image.js";
import { waitFor } from "./wait.js";

/** True when the runtime under test is our shim (some checks read our own log lines). */
export const OURS = RUNTIME === "io.containerd.ts.v2";

/** A fault-runc control directory: files named hold-/hang-/fail-<verb> steer the wrapper (see the fixture). */
export class FaultRunc {
  /** The wrapper to give as BinaryName. */
  readonly binary: string;
  /** A runtime config file naming the wrapper (`--runtime-config-path`, our shim's ConfigPath). */
  readonly config: string;

  constructor(readonly dir: string, opts: { root?: string } = {}) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    this.binary = path.join(dir, "runc");
    symlinkSync(path.join(REPO_ROOT, "test", "fixtures", "fault-runc"), this.binary);
    this.config = path.join(dir, "runtime.toml");
    writeFileSync(this.config, `BinaryName = ${JSON.stringify(this.binary)}\n` + (opts.root ? `Root = ${JSON.stringify(opts.root)}\n` : ""));
    this.root = opts.root;
  }

  readonly root: string | undefined;

  /** Sets a fault: `hold` (wait until cleared), `hang` (never return), `fail` (error `message`). */
  set(kind: "hold" | "hang" | "fail", verb: string, message = `injected ${verb} failure`): void {
    writeFileSync(path.join(this.dir, `${kind}-${verb}`), `${message}\n`);
  }

  clear(kind: "hold" | "hang" | "fail", verb: string): void {
    rmSync(path.join(this.dir, `${kind}-${verb}`), { force: true });
    rmSync(path.join(this.dir, kind === "hold" ? `${verb}-waiting` : `${verb}-hung`), { force: true });
  }

  /** Waits until a `hold` call of `verb` is waiting. */
  async waiting(verb: string, timeoutMs = 20_000): Promise<void> {
    await waitFor(() => existsSync(path.join(this.dir, `${verb}-waiting`)), { timeoutMs, what: `runc ${verb} to be held` });
  }

  /** Pid of the process a `hang` of `verb` became, once it is hung (0 if it never hung). */
  hungPid(verb: string): number {
    try { return Number(readFileSync(path.join(this.dir, `${verb}-hung`), "utf8").trim()) || 0; } catch { return 0; }
  }

  /** The runc calls seen so far (each: its argument string). */
  calls(): string[] {
    try { return readFileSync(path.join(this.dir, "calls"), "utf8").split("\n").filter(Boolean).map((l) => l.slice(l.indexOf(" ") + 1)); } catch { return []; }
  }

  /** ctr run/create options that make the runtime under test use this wrapper (and root). */
  ctrOptions(): string[] {
    if (RUNTIME === "io.containerd.runc.v2") return ["--runc-binary", this.binary, ...(this.root ? ["--runc-root", this.root] : [])];
    return ["--runtime-config-path", this.config];
  }
}

/**
 * `ctr run` arguments for the runtime under test with `runc` as the OCI runtime, in shim group `group`
 * (annotation io.containerd.runc.v2.group: one shim daemon serves the group, ours and the Go shim alike).
 */
export function groupRunArgs(id: string, cmd: string[], o: { group: string; runc?: FaultRunc; detach?: boolean; extra?: string[] }): string[] {
  return ["run", "--runtime", RUNTIME, ...(o.runc?.ctrOptions() ?? []), "--annotation", `io.containerd.runc.v2.group=${o.group}`,
    ...(o.extra ?? []), ...(o.detach ? ["-d"] : []), BUSYBOX_REF, id, ...cmd];
}

/** Container ids runc knows under `root` (`runc --root <root> list`). */
export async function runcList(root: string): Promise<string[]> {
  if (!existsSync(root)) return [];
  const r = await runCapture("runc", ["--root", root, "list", "-q"], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`runc --root ${root} list: ${r.stderr}`);
  return r.stdout.split("\n").filter(Boolean);
}

/** Cgroups `<parent>/<name>` left in any hierarchy of /sys/fs/cgroup (v1 controllers and the v2 mount). */
export function cgroupsUnder(parent: string): string[] {
  const out = new Set<string>();
  for (const ctl of safeReaddir("/sys/fs/cgroup")) {
    const dir = path.join("/sys/fs/cgroup", ctl, parent);
    for (const name of safeReaddir(dir)) {
      if (existsSync(path.join(dir, name, "cgroup.procs"))) out.add(path.join(ctl, parent, name));
    }
  }
  return [...out];
}

function safeReaddir(p: string): string[] {
  try { return readdirSync(p); } catch { return []; }
}

/** Bundles containerd `c` holds for namespace `ns`. */
export function bundles(c: Containerd, ns: string): string[] {
  return safeReaddir(path.join(c.state, "io.containerd.runtime.v2.task", ns));
}

/**
 * What is left of container `id` in namespace `ns` of containerd `c` while other containers run: its runc
 * container (under `runcRoot`), live processes in its cgroup, bundle, mounts below the bundle, and its
 * own shim daemon (one started with `-id <id>`).
 */
export async function leftoversOf(c: Containerd, ns: string, id: string, runcRoot = path.join("/run/containerd/runc", ns)) {
  const bundle = path.join(c.state, "io.containerd.runtime.v2.task", ns, id);
  return {
    runc: (await runcList(runcRoot)).filter((x) => x === id),
    processes: containerProcesses(ns, id),
    bundle: existsSync(bundle) ? [bundle] : [],
    mounts: mountsUnder(bundle),
    daemons: shimDaemons(c).filter((pid) => {
      try { return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").includes(` -id ${id} `); } catch { return false; }
    }),
  };
}

/** Waits until nothing of `id` is left (see leftoversOf); the error lists what is. */
export async function assertGone(c: Containerd, ns: string, id: string, runcRoot?: string): Promise<void> {
  let last = await leftoversOf(c, ns, id, runcRoot);
  try {
    await waitFor(async () => Object.values(last = await leftoversOf(c, ns, id, runcRoot)).every((v) => v.length === 0),
      { timeoutMs: 15_000, what: `nothing of ${id} left` });
  } catch (err) {
    throw new Error(`${(err as Error).message}: ${JSON.stringify(last)}\n${c.logTail(20)}`);
  }
}
