// Helpers for running the real shim binary in tests, and for finding and cleaning up its daemons.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Readable, Writable } from "node:stream";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { withTimeout } from "./wait.js";

/** bin/containerd-shim-ts-v2 (dist/test/helpers/shim.js -> ../../../bin). */
export const BIN = fileURLToPath(new URL("../../../bin/containerd-shim-ts-v2", import.meta.url));

/** What a shim run produced. */
export interface RunResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
  ms: number;
}

/**
 * Runs the shim binary and resolves when its stdout and stderr are closed by every holder (the way
 * containerd's CombinedOutput waits), so a daemon that kept the pipes would make this time out.
 */
export function runShim(
  args: string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv; stdin?: Uint8Array; timeoutMs?: number; extraPipe?: boolean },
): Promise<RunResult> {
  const t0 = performance.now();
  // extraPipe: an inherited fd 20 without close-on-exec, as a careless parent might leave open. (Low fds
  // are no test: libuv reuses them while setting up the daemon's stdio.)
  const stdio: Array<"pipe" | "ignore"> = ["pipe", "pipe", "pipe"];
  if (opts.extraPipe) stdio.push(...Array<"ignore">(17).fill("ignore"), "pipe");
  // Executed as containerd does (the launcher finds node on PATH), not as `node BIN`.
  const child = spawn(BIN, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio });
  const extra = (child.stdio as ReadonlyArray<Readable | Writable | null | undefined>)[20];
  const extraClosed = extra ? new Promise<void>((resolve) => extra.once("close", () => resolve())) : Promise.resolve();
  if (extra && "resume" in extra) extra.resume();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const { stdin, stdout, stderr } = child;
  if (!stdin || !stdout || !stderr) throw new Error("spawn gave no stdio pipes");
  stdout.on("data", (b: Buffer) => out.push(b));
  stderr.on("data", (b: Buffer) => err.push(b));
  stdin.end(opts.stdin ?? new Uint8Array());
  const done = new Promise<RunResult>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => {
      const result = { code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString("utf8"), ms: performance.now() - t0 };
      void extraClosed.then(() => resolve(result));
    });
  });
  return withTimeout(done, opts.timeoutMs ?? 15_000, `shim ${args.join(" ")}`);
}

/** A temp dir removed after the test. */
export async function tempDir(t: TestContext, prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Pids of shim daemons serving `socketPath`: those whose command line names it (`-socket <path>`), and a warm
 * spare adopted for it (its argv still says `-spare ...`), found by the listening socket it holds, which
 * bindSocket bound as `<path>.<pid>` before linking it to `<path>`.
 */
export function daemonsFor(socketPath: string): number[] {
  const pids: number[] = [];
  const spares: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0");
      if (!argv.some((a) => a.endsWith("containerd-shim-ts-v2"))) continue;
      const i = argv.indexOf("-socket");
      if (i >= 0 && argv[i + 1] === socketPath) pids.push(Number(name));
      else if (argv.includes("-spare")) spares.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  if (spares.length === 0) return pids;
  const inodes = listeningInodes(socketPath);
  return [...pids, ...spares.filter((pid) => holdsSocket(pid, inodes))];
}

/** Inodes of listening unix sockets bound under `<path>.<something>` (/proc/net/unix, flag __SO_ACCEPTCON). */
function listeningInodes(socketPath: string): Set<string> {
  const out = new Set<string>();
  for (const line of readFileSync("/proc/net/unix", "utf8").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && f[3] === "00010000" && f[7]!.startsWith(`${socketPath}.`)) out.add(f[6]!);
  }
  return out;
}

function holdsSocket(pid: number, inodes: Set<string>): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return inodes.has(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? "");
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** True while `pid` exists (and is not a zombie). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Fails the test with a clear message unless running as root. */
export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) throw new Error(`${what} needs root (uid 0); run the shim tests as root`);
}
