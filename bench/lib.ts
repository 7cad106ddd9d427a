// Shared pieces of the containerd-level benchmarks: a private containerd from the e2e harness running both
// runtimes (ours and containerd-shim-runc-v2 from the same Debian package, picked per container with
// `ctr run --runtime`), shim pids and sockets, /proc memory, percentiles, markdown tables, RESULTS.md.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { BUSYBOX_REF, SHIM_BINARY, shimSocketPath, startContainerd, type Containerd, type ContainerdVersion } from "../test/helpers/containerd.js";
import { REPO_ROOT } from "../test/helpers/image.js";
import { waitFor } from "../test/helpers/wait.js";

export { BUSYBOX_REF, type Containerd, type ContainerdVersion };
export const OURS = "io.containerd.ts.v2";
export const RUNC = "io.containerd.runc.v2";
export const RUNTIMES = [OURS, RUNC] as const;
export const RESULTS = path.join(REPO_ROOT, "bench", "RESULTS.md");

/** Short label of a runtime for tables. */
export function label(runtime: string): string {
  if (isBun(runtime)) return bunLabel(runtime);
  return runtime === OURS ? "ours (ts-v2)" : "runc-v2 (Go)";
}

/** `--name value` from argv, else `def`. */
export function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}
export function flag(name: string): boolean {
  return process.argv.includes(`--${name}`);
}
/** `--versions 2.1,1.6` (default `def`). */
export function versions(def: string): ContainerdVersion[] {
  return arg("versions", def).split(",").map((s) => s.trim()) as ContainerdVersion[];
}

/**
 * The file containerd runs as our shim: `--shim FILE` (absolute), `--shim release` for the single executable
 * `npm run package` builds (release/containerd-shim-ts-v2, what scripts/install.sh installs), default the
 * launcher bin/containerd-shim-ts-v2 (node + dist/ of this checkout).
 */
export function shimBinary(): string {
  const s = arg("shim", "");
  if (s === "") return SHIM_BINARY;
  const file = s === "release" ? path.join(REPO_ROOT, "release", "containerd-shim-ts-v2") : path.resolve(s);
  if (!existsSync(file)) throw new Error(`--shim ${s}: no ${file}${s === "release" ? " (run npm run package)" : ""}`);
  return file;
}

/** `--warm`: our shim runs with its warm spare (SHIM_TS_WARM=1 in the environment of every bench containerd). */
export const WARM = flag("warm");

/** `env` plus SHIM_TS_WARM=1 under `--warm` (an explicit SHIM_TS_WARM in `env` wins). */
export function shimEnv(env: Record<string, string> = {}): Record<string, string> {
  return WARM ? { SHIM_TS_WARM: "1", ...env } : env;
}

/**
 * The idle warm spares among `pids` (our daemons): started with `-spare S` and still named by `S.pid`, which
 * the spare removes when it is adopted (it then serves a pod under the same argv) or exits.
 */
export function idleSpares(pids: number[]): number[] {
  return pids.filter((pid) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      const i = argv.indexOf("-spare");
      return i >= 0 && Number(readFileSync(`${argv[i + 1]}.pid`, "utf8")) === pid;
    } catch {
      return false;
    }
  });
}

/**
 * A private containerd of `version` (both runtimes usable); `env` reaches every shim's `start`. Containerds
 * running at the same time need their own `namespace`: it names the runc root, which stop() empties.
 */
export async function containerd(version: ContainerdVersion, env: Record<string, string> = {},
  namespace = `bench-${process.pid}`): Promise<Containerd> {
  if (process.getuid?.() !== 0) throw new Error("benchmarks need root");
  return startContainerd(version, { namespace, env: shimEnv(env), shimBinary: shimBinary() });
}

/** Runs ctr and throws unless it exits 0. */
export async function ctr(c: Containerd, args: string[], timeoutMs = 60_000): Promise<string> {
  const r = await c.ctr(args, { timeoutMs });
  if (r.code !== 0) throw new Error(`ctr ${args.join(" ")} -> ${r.code ?? r.signal}: ${r.stderr.trim()}\n${c.logTail(15)}`);
  return r.stdout;
}

/** Wall time of `ctr args` in ms; throws on failure. */
export async function timeCtr(c: Containerd, args: string[]): Promise<number> {
  const t0 = performance.now();
  await ctr(c, args);
  return performance.now() - t0;
}

/** `ctr run -d --runtime R busybox id cmd...` */
export function runDetached(c: Containerd, runtime: string, id: string, cmd: string[]): Promise<string> {
  return ctr(c, ["run", "-d", "--runtime", runtime, BUSYBOX_REF, id, ...cmd]);
}

/** Kills and deletes task and container `id` (ignores what is already gone). */
export async function remove(c: Containerd, id: string): Promise<void> {
  await c.ctr(["task", "kill", "-s", "SIGKILL", id]);
  await waitFor(async () => {
    const r = await c.ctr(["task", "delete", id]);
    return r.code === 0 || /not found/.test(r.stderr);
  }, { timeoutMs: 15_000, intervalMs: 50, what: `task delete ${id}` });
  await c.ctr(["container", "delete", id]);
}

/** The init pid of task `id` (from `ctr task ls`). */
export async function taskPid(c: Containerd, id: string): Promise<number> {
  for (const line of (await ctr(c, ["task", "ls"])).split("\n").slice(1)) {
    const [tid, pid] = line.trim().split(/\s+/);
    if (tid === id) return Number(pid);
  }
  throw new Error(`task ${id} not listed`);
}

/** The parent pid of `pid`, from /proc. */
export function ppidOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/** The shim daemon serving task `id`: the init's parent (both shims are subreapers). */
export async function shimPid(c: Containerd, id: string): Promise<number> {
  return ppidOf(await taskPid(c, id));
}

/** The unix socket path of task `id`'s shim: its bundle's `address` (or 2.x `bootstrap.json`), else the default. */
export function shimSocket(c: Containerd, id: string): string {
  const bundle = path.join(c.state, "io.containerd.runtime.v2.task", c.namespace, id);
  for (const f of ["address", "bootstrap.json"]) {
    try {
      const m = /unix:\/\/([^\s"]+)/.exec(readFileSync(path.join(bundle, f), "utf8"));
      if (m?.[1]) return m[1];
    } catch { /* next */ }
  }
  return shimSocketPath(c, c.namespace, id);
}

/** RSS, PSS and private (clean+dirty) memory of a process in KiB, and its thread count. */
export function memoryOf(pid: number): { rss: number; pss: number; priv: number; threads: number } {
  const roll = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(roll)?.[1] ?? 0);
  const threads = Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  return { rss: kb("Rss"), pss: kb("Pss"), priv: kb("Private_Clean") + kb("Private_Dirty"), threads };
}

/** User + system CPU of a process in microseconds (100 Hz ticks). */
export function cpuOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10_000;
}

/** Time `pid` has spent on a CPU, in ms (/proc/<pid>/schedstat, ns resolution; all threads). */
export function cpuMsOf(pid: number): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch { /* thread gone */ }
  }
  return total / 1e6;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\S+ \S+ Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8").replace(/\(.*\)/, "x"));
  } catch {
    return false;
  }
}

/** Value at quantile q of `xs` (sorted copy, nearest rank). */
export function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN;
}

export function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "-";
}

/** A markdown table. */
export function table(head: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]): string => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n") + "\n";
}

/** True when the module at `url` is the script node was started with (not imported by bench/all.ts). */
export function isMain(url: string): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === url;
  } catch {
    return false;
  }
}

/** The machine's 1-minute load average, for a results header (other work shares the cores). */
export function load(): string {
  return loadavg()[0]!.toFixed(2);
}

/** Node and machine description for a results header. */
export function stamp(): string {
  return `${new Date().toISOString()}, node ${process.version}, ${readFileSync("/proc/cpuinfo", "utf8").split("\n")
    .filter((l) => l.startsWith("processor")).length} CPUs`;
}

/**
 * Replaces the section `## title` of bench/RESULTS.md (up to the next `## `) with `body`, or appends it.
 * Only with --write; the table is always printed.
 */
export function record(title: string, body: string): void {
  process.stdout.write(`\n## ${title}\n\n${body}\n`);
  if (!flag("write")) return;
  const text = readFileSync(RESULTS, "utf8");
  const head = `## ${title}\n`;
  const start = text.indexOf(head);
  const section = `${head}\n${body.trimEnd()}\n\n`;
  if (start < 0) {
    writeFileSync(RESULTS, `${text.trimEnd()}\n\n${section}`);
    return;
  }
  const next = text.indexOf("\n## ", start + head.length);
  writeFileSync(RESULTS, text.slice(0, start) + section + (next < 0 ? "" : text.slice(next + 1)));
}

/** Runs `cmd` with stdout to /dev/null (no capture); resolves with its exit code and wall time. */
export function runToNull(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; ms: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    p.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    p.once("error", reject);
    p.once("close", (code) => resolve({ code, ms: performance.now() - t0, stderr }));
  });
}

const SUITES: Record<ContainerdVersion, string> = { "1.6": "bookworm", "1.7": "trixie", "2.1": "sid" };
/** The `ctr` binary of containerd `version` and its arguments for containerd `c`. */
export function ctrCommand(c: Containerd, args: string[]): [string, string[]] {
  return [path.join(REPO_ROOT, ".deps", "containerd", SUITES[c.version], "usr", "bin", "ctr"),
    ["--address", c.address, "-n", c.namespace, ...args]];
}

/**
 * `--runtime node,bun` (or `bun`, or `"node,bun,bun --smol"`): our shim also on Bun, as a runtime of its
 * own, so it runs in the same containerd as the others, interleaved. Each Bun entry is an absolute shim
 * path, which `ctr run --runtime` takes like a name: a wrapper in a temp dir that sets SHIM_TS_RUNTIME=bun
 * (and SHIM_TS_DAEMON_NODE_FLAGS to what follows "bun ", which reaches Bun as its own flags) and execs
 * bin/containerd-shim-ts-v2: one extra /bin/sh exec per `start`/`delete`, about 1 ms. Removed at exit.
 * With `--runtime`, "node" is ours as such on Node: the bench's containerds get SHIM_TS_RUNTIME=node (unless
 * set already), since the launcher runs Bun by default.
 */
export function jsRuntimes(): string[] {
  if (flag("runtime")) process.env["SHIM_TS_RUNTIME"] ??= "node";
  const wanted = arg("runtime", "node").split(",").map((s) => s.trim()).filter((s) => s !== "" && s !== "node");
  return wanted.map((rt) => {
    const [name, ...flags] = rt.split(/\s+/);
    if (name !== "bun") throw new Error(`--runtime: node or bun [flags], not ${rt}`);
    return bunShim(flags.join(" "));
  });
}

const bunWrappers = new Map<string, string>(); // path -> flags
let bunDir: string | undefined;
function bunShim(flags: string): string {
  for (const [file, f] of bunWrappers) if (f === flags) return file;
  if (bunDir === undefined) {
    const dir = mkdtempSync(path.join(tmpdir(), "bench-bun-"));
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    bunDir = dir;
  }
  const file = path.join(bunDir, `containerd-shim-tsbun${bunWrappers.size}-v2`);
  const env = `SHIM_TS_RUNTIME=bun${flags === "" ? "" : ` SHIM_TS_DAEMON_NODE_FLAGS='${flags}'`}`;
  writeFileSync(file, `#!/bin/sh\n${env} exec ${path.join(REPO_ROOT, "bin", "containerd-shim-ts-v2")} "$@"\n`, { mode: 0o755 });
  bunWrappers.set(file, flags);
  return file;
}

/** Whether `runtime` is ours on Bun (a wrapper of {@link jsRuntimes}). */
export function isBun(runtime: string): boolean {
  return bunWrappers.has(runtime);
}

/** A short id part for a Bun wrapper ("bun0", "bun1"), so that its containers' ids do not collide. */
export function bunTag(runtime: string): string {
  return `bun${[...bunWrappers.keys()].indexOf(runtime)}`;
}

/** "ours (ts-v2) on Bun" plus its flags, if any. */
function bunLabel(runtime: string): string {
  const flags = bunWrappers.get(runtime) ?? "";
  return `ours (ts-v2) on Bun${flags === "" ? "" : ` ${flags}`}`;
}
