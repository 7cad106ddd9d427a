// A private containerd (1.6, 1.7 or 2.1, from .deps/containerd/<suite>) per test file, everything under one
// short temp dir, with our shim findable on PATH. stop() leaves no process, mount, socket or cgroup behind.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, openSync, closeSync, readdirSync, readFileSync, rmdirSync } from "node:fs";
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { BUSYBOX_REF, REPO_ROOT, busyboxImageTar, pauseImageTar } from "./image.js";
import { configToml, shimSocketPath, type Grouping } from "./containerd-config.js";
import { containerProcesses, mountsUnder, processesUnder } from "./procs.js";
import { waitFor, withTimeout } from "./wait.js";

export type ContainerdVersion = "1.6" | "1.7" | "2.1";
export const ALL_VERSIONS: ContainerdVersion[] = ["1.6", "1.7", "2.1"];
const SUITES: Record<ContainerdVersion, string> = { "1.6": "bookworm", "1.7": "trixie", "2.1": "sid" };

/** The ctr of a containerd version under .deps/ (for a command line of its own, e.g. under `script`). */
export function ctrBinary(version: ContainerdVersion): string {
  return path.join(REPO_ROOT, ".deps", "containerd", SUITES[version], "usr", "bin", "ctr");
}

/** Runtime under test: E2E_RUNTIME, default our shim. `io.containerd.runc.v2` validates the harness itself. */
export const RUNTIME = process.env.E2E_RUNTIME ?? "io.containerd.ts.v2";
/** Versions under test: E2E_VERSIONS (comma separated), default all three. */
export const VERSIONS = (process.env.E2E_VERSIONS?.split(",").map((s) => s.trim()) ?? ALL_VERSIONS) as ContainerdVersion[];
export const SHIM_BINARY = path.join(REPO_ROOT, "bin", "containerd-shim-ts-v2");

export interface ContainerdOptions {
  cri?: boolean;             // enable the CRI plugin (default runtime = opts.runtime)
  runtime?: string;          // CRI runtime_type; default RUNTIME
  namespace?: string;        // default ctr namespace; default a unique "e2e-<hex>"
  images?: ("busybox" | "pause")[];  // imported at start; default ["busybox"]
  extraConfig?: string;      // appended to config.toml
  logLevel?: string;         // containerd --log-level (the config says "debug", which also gives shims -debug)
  env?: Record<string, string>;
  shimBinary?: string;       // what <dir>/bin/containerd-shim-ts-v2 links to; default SHIM_BINARY (the launcher)
  systemPath?: string[];     // PATH after <dir>/bin and containerd's dir; default node's dir and the usual system dirs
}
export interface CtrResult { stdout: string; stderr: string; code: number | null; signal: string | null }
export interface CtrOptions { ns?: string; timeoutMs?: number; input?: string }

export interface Containerd {
  readonly version: ContainerdVersion;
  readonly dir: string; readonly address: string; readonly ttrpcAddress: string;
  readonly root: string; readonly state: string; readonly namespace: string;
  readonly pid: number | undefined;
  /** How the shim under test groups containers: SHIM_TS_GROUPING of this containerd's env (runc-v2: pod). */
  readonly grouping: Grouping;
  ctr(args: string[], opts?: CtrOptions): Promise<CtrResult>;
  stop(): Promise<void>; kill9(): Promise<void>; restart(): Promise<void>;
  logs(): Promise<string>; logTail(lines?: number): string;
}

/** Throws a clear error when something the e2e tests need is missing (never skips). */
export function preflight(version: ContainerdVersion, runtime = RUNTIME): void {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push("root (run as uid 0)");
  const bin = path.join(REPO_ROOT, ".deps", "containerd", SUITES[version], "usr", "bin");
  for (const b of ["containerd", "ctr"]) if (!existsSync(path.join(bin, b))) missing.push(path.join(bin, b));
  if (!existsSync("/usr/sbin/runc") && !existsSync("/usr/bin/runc")) missing.push("runc");
  if (runtime === "io.containerd.ts.v2") {
    if (!existsSync(SHIM_BINARY)) missing.push(`${SHIM_BINARY} (run npm run build)`);
    const main = path.join(REPO_ROOT, "dist", "src", "shim", "entry", "main.js");
    if (!existsSync(main)) missing.push(`${main} (run npm run build)`);
  }
  if (missing.length > 0) {
    throw new Error(`e2e prerequisites missing for containerd ${version}: ${missing.join(", ")}; run scripts/install-deps.sh`);
  }
}

/** Starts a private containerd of `version`, waits for its gRPC socket and imports the test images. */
export async function startContainerd(version: ContainerdVersion, opts: ContainerdOptions = {}): Promise<Containerd> {
  preflight(version, opts.runtime ?? RUNTIME);
  const c = new Instance(version, opts, await mkdtemp(`/tmp/ctd${version.replace(".", "")}-`));
  try {
    await c.setup();
    await c.launch();
    for (const img of opts.images ?? ["busybox"]) {
      const tar = img === "busybox" ? await busyboxImageTar() : await pauseImageTar();
      await c.ctrOk(["images", "import", "--all-platforms", tar], { timeoutMs: 60_000 });
    }
    await c.ctrOk(["images", "check"]);
  } catch (err) {
    const tail = c.logTail(40);
    await c.stop().catch(() => undefined);
    throw new Error(`${(err as Error).message}\n--- containerd ${version} log tail ---\n${tail}`);
  }
  return c;
}

class Instance implements Containerd {
  readonly address: string; readonly ttrpcAddress: string; readonly root: string; readonly state: string;
  readonly namespace: string; readonly grouping: Grouping;
  private readonly binDir: string; private readonly logPath: string; private readonly usrBin: string;
  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private readonly namespaces = new Set<string>();

  constructor(readonly version: ContainerdVersion, private readonly opts: ContainerdOptions, readonly dir: string) {
    this.address = path.join(dir, "c.sock");
    this.ttrpcAddress = `${this.address}.ttrpc`;
    this.root = path.join(dir, "root");
    this.state = path.join(dir, "state");
    this.binDir = path.join(dir, "bin");
    this.logPath = path.join(dir, "containerd.log");
    this.usrBin = path.join(REPO_ROOT, ".deps", "containerd", SUITES[version], "usr", "bin");
    this.namespace = opts.namespace ?? `e2e-${randomBytes(4).toString("hex")}`;
    this.namespaces.add(this.namespace);
    const ours = (opts.runtime ?? RUNTIME) === "io.containerd.ts.v2";
    this.grouping = ours && (opts.env?.SHIM_TS_GROUPING ?? process.env.SHIM_TS_GROUPING) === "namespace" ? "namespace" : "pod";
  }

  get pid(): number | undefined { return this.proc?.exitCode === null ? this.proc.pid : undefined; }

  private get env(): NodeJS.ProcessEnv {
    const extra = [this.binDir, this.usrBin, ...(this.opts.systemPath ?? [path.dirname(process.execPath), "/usr/local/sbin",
      "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"])];
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.opts.env, PATH: extra.join(":") };
    delete env.NOTIFY_SOCKET;
    return env;
  }

  async setup(): Promise<void> {
    await mkdir(this.binDir, { recursive: true });
    await mkdir(path.join(this.dir, "cni"), { recursive: true });
    await symlink(this.opts.shimBinary ?? SHIM_BINARY, path.join(this.binDir, "containerd-shim-ts-v2"));
    const cfg = configToml(this.version, {
      dir: this.dir, root: this.root, state: this.state, address: this.address, ttrpcAddress: this.ttrpcAddress,
      cri: this.opts.cri ?? false, runtime: this.opts.runtime ?? RUNTIME,
    }) + (this.opts.extraConfig ?? "");
    await writeFile(path.join(this.dir, "config.toml"), cfg);
  }

  async launch(): Promise<void> {
    const log = openSync(this.logPath, "a");
    const level = this.opts.logLevel === undefined ? [] : ["--log-level", this.opts.logLevel];
    const proc = spawn(path.join(this.usrBin, "containerd"), ["--config", path.join(this.dir, "config.toml"), ...level], {
      cwd: this.dir, env: this.env, stdio: ["ignore", log, log],
    });
    closeSync(log);
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.once("exit", () => resolve()));
    let spawnErr: Error | undefined;
    proc.once("error", (e) => { spawnErr = e; });
    await waitFor(async () => {
      if (spawnErr) throw Object.assign(spawnErr, { fatal: true });
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`containerd ${this.version} exited (${proc.exitCode ?? proc.signalCode}) before serving`);
      }
      return existsSync(this.address) && (await canConnect(this.address));
    }, { timeoutMs: 20_000, intervalMs: 20, what: `containerd ${this.version} gRPC socket ${this.address}` });
    await this.ctrOk(["version"]);
  }

  ctr(args: string[], o: CtrOptions = {}): Promise<CtrResult> {
    const ns = o.ns ?? this.namespace;
    this.namespaces.add(ns);
    return runCapture(path.join(this.usrBin, "ctr"), ["--address", this.address, "-n", ns, ...args],
      { env: this.env, cwd: this.dir, timeoutMs: o.timeoutMs ?? 60_000, input: o.input });
  }

  /** Like ctr() but throws (with stderr and the log tail) unless the exit code is 0. */
  async ctrOk(args: string[], o: CtrOptions = {}): Promise<CtrResult> {
    const r = await this.ctr(args, o);
    if (r.code !== 0) throw new Error(`ctr ${args.join(" ")} -> ${r.code ?? r.signal}: ${r.stderr.trim()}`);
    return r;
  }

  async logs(): Promise<string> { return readFile(this.logPath, "utf8").catch(() => ""); }

  logTail(lines = 30): string {
    try { return readFileSync(this.logPath, "utf8").trimEnd().split("\n").slice(-lines).join("\n"); } catch { return ""; }
  }

  async kill9(): Promise<void> { await this.halt("SIGKILL"); }

  async restart(): Promise<void> {
    await this.halt("SIGTERM");
    await this.launch();
  }

  private async halt(sig: NodeJS.Signals): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill(sig);
    try {
      await withTimeout(this.exited, 10_000, `containerd ${this.version} to exit on ${sig}`);
    } catch {
      p.kill("SIGKILL");
      await withTimeout(this.exited, 5_000, `containerd ${this.version} to exit on SIGKILL`);
    }
  }

  /** SIGTERM containerd, then remove every shim, container, mount, socket, runc state and cgroup it left. */
  async stop(): Promise<void> {
    await this.halt("SIGTERM");
    const ns = [...this.namespaces];
    // With namespace grouping a daemon may be lingering after its last pod (docs/grouping.md): no bundle names
    // its socket any more, and the SIGKILL below leaves it behind.
    const sockets = [...shimSockets(this.state), ...(this.grouping === "namespace" ? ns.map((n) => shimSocketPath(this, n, "")) : [])];
    const leftovers = () => [...processesUnder(this.dir), ...ns.flatMap((n) => containerProcesses(n))];
    const killAll = (): number => {
      const left = leftovers();
      for (const pid of left) try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
      return left.length;
    };
    killAll();
    for (const n of ns) await cleanRunc(n, this.env);
    // Killed again while waiting: a `start` or `delete` that containerd ran just before it stopped can still
    // spawn a daemon (or runc a process) after the first round.
    await waitFor(() => killAll() === 0, { timeoutMs: 10_000, intervalMs: 50, what: `processes of ${this.dir} to exit` });
    for (const n of ns) rmCgroups(n);
    await unmountUnder(this.dir);
    for (const s of sockets) await rm(s, { force: true });
    // E2E_KEEP_LOGS=<dir>: each containerd's log (our shim's lines included) is kept there, for a failure
    // that does not show on demand.
    const keep = process.env["E2E_KEEP_LOGS"];
    if (keep) await cp(this.logPath, path.join(keep, `${path.basename(this.dir)}.log`)).catch(() => {});
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** The shim socket path our shim (and the Go shim) uses for a container started by `ctr run` (§2.1). */
export { shimSocketPath, type Grouping } from "./containerd-config.js";

async function canConnect(sock: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(sock);
    s.once("connect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
  });
}

/** Runs a command, collects output; never rejects on a non-zero exit (SIGKILLs it after timeoutMs). */
export function runCapture(cmd: string, args: string[], o: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; input?: string } = {}): Promise<CtrResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: o.env, cwd: o.cwd, stdio: [o.input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    let stdout = ""; let stderr = "";
    p.stdout!.setEncoding("utf8").on("data", (d: string) => { stdout += d; });
    p.stderr!.setEncoding("utf8").on("data", (d: string) => { stderr += d; });
    if (o.input !== undefined) p.stdin!.end(o.input);
    const timer = setTimeout(() => { stderr += `\n[killed after ${o.timeoutMs} ms]`; p.kill("SIGKILL"); }, o.timeoutMs ?? 60_000);
    p.once("error", (e) => { clearTimeout(timer); reject(e); });
    p.once("close", (code, signal) => { clearTimeout(timer); resolve({ stdout, stderr, code, signal }); });
  });
}

async function unmountUnder(dir: string): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const mounts = mountsUnder(dir);
    if (mounts.length === 0) return;
    for (const m of mounts) await runCapture("umount", ["-l", m], { timeoutMs: 10_000 });
  }
}

/** Shim socket files named by the `address` files of the task bundles under `state`. */
function shimSockets(state: string): string[] {
  const base = path.join(state, "io.containerd.runtime.v2.task");
  const out: string[] = [];
  for (const ns of safeReaddir(base)) {
    for (const id of safeReaddir(path.join(base, ns))) {
      try {
        const addr = readFileSync(path.join(base, ns, id, "address"), "utf8").trim();
        const m = /unix:\/\/(\/\S+)/.exec(addr) ?? /"address":"unix:\/\/([^"]+)"/.exec(addr);
        if (m?.[1]) out.push(m[1]);
      } catch { /* no address file */ }
    }
  }
  return out;
}

function safeReaddir(p: string): string[] {
  try { return readdirSync(p); } catch { return []; }
}

/** Deletes runc state of namespace `ns` (root /run/containerd/runc/<ns>): kills and deletes its containers. */
async function cleanRunc(ns: string, env: NodeJS.ProcessEnv): Promise<void> {
  const root = path.join("/run/containerd/runc", ns);
  for (const id of safeReaddir(root)) {
    await runCapture("runc", ["--root", root, "delete", "--force", id], { env, timeoutMs: 10_000 });
  }
  await rm(root, { recursive: true, force: true });
}

/** Removes the (empty) cgroups `/<ns>/*` and `/<ns>` under every cgroup v1 hierarchy and the v2 mount. */
function rmCgroups(ns: string): void {
  for (const ctl of safeReaddir("/sys/fs/cgroup")) {
    const nsDir = path.join("/sys/fs/cgroup", ctl, ns);
    for (const id of safeReaddir(nsDir)) rmdirQuiet(path.join(nsDir, id));
    rmdirQuiet(nsDir);
  }
}

function rmdirQuiet(p: string): void {
  try { if (existsSync(p)) rmdirSync(p); } catch { /* not a dir or still busy */ }
}

export { BUSYBOX_REF };
export { containerProcesses, mountsUnder, processesUnder, zombiesOf } from "./procs.js";
