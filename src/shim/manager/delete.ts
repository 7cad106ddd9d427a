// Folder src/shim/manager:
// Owns: the short-lived `start` and `delete` processes containerd runs (containerd's shim.Manager: Start/Stop):
//   spawning or joining the daemon, its placement, containerd's version probe, a dead pod's orphans.
// Must not import: cgroups, runc, sandbox, shim/daemon, shim/entry, shim/events, stdio, task, ttrpc.

/**
 * The `delete` action (shared/protocol.md §1.6, peers.md §2.11): clean up container `-id` after its shim
 * is gone or after a normal teardown. Idempotent, touches only `-id` and its bundle, never the daemon; for a
 * pod sandbox whose daemon is gone, also the pod's containers containerd will not delete (orphans.ts).
 * stdout carries the `DeleteResponse` protobuf; stderr carries warnings (containerd logs them).
 */
import { spawn } from "node:child_process";
import { lstatSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import type { Flags } from "../invocation/flags.js";
import { pushVarint } from "../invocation/wire.js";

/** The runc shim's default state root; the effective root is `<root>/<namespace>`. */
export const DEFAULT_RUNC_ROOT = "/run/containerd/runc";
/** 128 + SIGKILL: what containerd reports for a container cleaned up by `delete`. */
export const DELETE_EXIT_STATUS = 137;
/** containerd gives the whole action 5 s (`io.containerd.timeout.shim.cleanup`). */
const RUNC_TIMEOUT_MS = 4000;

/** `<bundle>/options.json` as the task service writes it at Create. */
export interface SavedOptions {
  binaryName?: string;
  root?: string;
  systemdCgroup?: boolean;
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
}

/** Reads `options.json` (and `runtime` for the binary name); missing or bad files give defaults. */
export function readSavedOptions(bundle: string): SavedOptions {
  const out: SavedOptions = {};
  const json = readText(path.join(bundle, "options.json"));
  if (json !== undefined) {
    try {
      const o = JSON.parse(json) as Record<string, unknown>;
      if (typeof o["binaryName"] === "string" && o["binaryName"] !== "") out.binaryName = o["binaryName"];
      if (typeof o["root"] === "string" && o["root"] !== "") out.root = o["root"];
      if (o["systemdCgroup"] === true) out.systemdCgroup = true;
    } catch {
      // unparsable: defaults
    }
  }
  if (out.binaryName === undefined) {
    const runtime = readText(path.join(bundle, "runtime"))?.trim();
    if (runtime) out.binaryName = runtime;
  }
  return out;
}

/** The argv of the runtime's force delete (after the binary). */
export function runcDeleteArgs(opts: SavedOptions, namespace: string, bundle: string, id: string): string[] {
  const args = ["--root", path.join(opts.root ?? DEFAULT_RUNC_ROOT, namespace)];
  args.push("--log", path.join(bundle, "log.json"), "--log-format", "json");
  if (opts.systemdCgroup) args.push("--systemd-cgroup");
  args.push("delete", "--force", id);
  return args;
}

/** Runs `binary args`, bounded by a timeout. Resolves with an error text, or undefined on success. */
function runQuiet(binary: string, args: string[]): Promise<string | undefined> {
  const env = { ...process.env };
  delete env["NOTIFY_SOCKET"];
  return new Promise((resolve) => {
    const child = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"], env, timeout: RUNC_TIMEOUT_MS, killSignal: "SIGKILL" });
    let stderr = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (s: string) => {
      if (stderr.length < 4096) stderr += s;
    });
    child.once("error", (err) => resolve(`Cannot run "${binary}": ${err.message}`));
    child.once("close", (code, sig) => {
      if (code === 0) resolve(undefined);
      else resolve(`"${binary} delete" failed (${sig ?? `exit status ${code}`}): ${stderr.trim()}`);
    });
  });
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

/** True if `dir` or anything below it is a mount point in this mount namespace. */
export function hasMounts(dir: string, mountinfo: string | undefined = readText("/proc/self/mountinfo")): boolean {
  if (mountinfo === undefined) return true; // cannot tell: try to unmount
  const prefix = dir.endsWith("/") ? dir : `${dir}/`;
  for (const line of mountinfo.split("\n")) {
    const mp = line.split(" ")[4];
    if (mp === undefined) continue;
    const target = unescapeMountinfo(mp);
    if (target === dir || target.startsWith(prefix)) return true;
  }
  return false;
}

/** `<bundle>/init.pid`, or 0 when absent or unreadable. */
export function readInitPid(bundle: string): number {
  const n = Number.parseInt(readText(path.join(bundle, "init.pid"))?.trim() ?? "", 10);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}

/**
 * Encodes the answer: `DeleteResponse { pid = 1, exit_status = 2: 137, exited_at = 3: now }`, by hand:
 * loading the generated protobuf code for three fields cost `delete` ~13 ms and ~5 MB (bench/RESULTS.md).
 * Zero fields are omitted (proto3 default).
 */
export function deleteResponse(pid: number, now: Date = new Date()): Uint8Array {
  const ms = now.getTime();
  const ts: number[] = [];
  const seconds = Math.floor(ms / 1000);
  const nanos = (ms - seconds * 1000) * 1_000_000;
  if (seconds > 0) ts.push(0x08), pushVarint(ts, seconds);
  if (nanos > 0) ts.push(0x10), pushVarint(ts, nanos);
  const out: number[] = [];
  if (pid > 0) out.push(0x08), pushVarint(out, pid);
  out.push(0x10), pushVarint(out, DELETE_EXIT_STATUS);
  out.push(0x1a), pushVarint(out, ts.length), out.push(...ts);
  return Uint8Array.from(out);
}

/** Does the cleanup and returns the protobuf to print plus the warnings for stderr. */
export async function runDelete(flags: Flags, bundle: string): Promise<{ out: Uint8Array; warnings: string[] }> {
  if (flags.id === "") throw new Error("Cannot delete: -id is required");
  const warnings: string[] = [];
  const opts = readSavedOptions(bundle);
  const err = await runQuiet(opts.binaryName ?? "runc", runcDeleteArgs(opts, flags.namespace, bundle, flags.id));
  if (err !== undefined) warnings.push(err);
  const w = await unmountRootfs(path.join(bundle, "rootfs"));
  if (w !== undefined) warnings.push(w);
  const stale = await removeDeadSocket(bundle);
  if (stale !== undefined) warnings.push(stale);
  if (isPodSandbox(bundle) && (await daemonGone(bundle))) {
    const { deletePodOrphans } = await import("./orphans.js");
    const root = path.join(opts.root ?? DEFAULT_RUNC_ROOT, flags.namespace);
    const rt = { binary: opts.binaryName ?? "runc", root, systemdCgroup: opts.systemdCgroup };
    warnings.push(...(await deletePodOrphans(rt, flags.id, unmountRootfs)));
  }
  return { out: deleteResponse(readInitPid(bundle)), warnings };
}

/** Unmounts `rootfs` if anything is mounted there; returns a warning on failure. */
async function unmountRootfs(rootfs: string): Promise<string | undefined> {
  if (!hasMounts(rootfs)) return undefined;
  try {
    const { unmountRecursive } = await import("../../sys/index.js");
    unmountRecursive(rootfs);
    return undefined;
  } catch (e) {
    return `Cannot unmount "${rootfs}": ${e instanceof Error ? e.message : String(e)}`;
  }
}

/** True if `<bundle>/config.json` is a CRI pod sandbox's (annotation io.kubernetes.cri.container-type). */
export function isPodSandbox(bundle: string): boolean {
  const raw = readText(path.join(bundle, "config.json"));
  if (raw === undefined || !raw.includes("io.kubernetes.cri.container-type")) return false;
  try {
    const spec = JSON.parse(raw) as { annotations?: Record<string, string> };
    return spec.annotations?.["io.kubernetes.cri.container-type"] === "sandbox";
  } catch {
    return false;
  }
}

/** True when no daemon serves the socket named by `<bundle>/address` any more (removed, or connect refused). */
export async function daemonGone(bundle: string): Promise<boolean> {
  const m = /^unix:\/\/(\/\S+)/.exec(readText(path.join(bundle, "address"))?.trim() ?? "");
  if (!m?.[1]) return false;
  try {
    lstatSync(m[1]);
  } catch {
    return true;
  }
  const code = await connectCode(m[1]);
  return code === "ECONNREFUSED" || code === "ENOENT";
}

/** Resolves with the error code of connecting to unix socket `p` ("" when something accepted). */
function connectCode(p: string): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect({ path: p });
    const done = (code: string): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(code);
    };
    const timer = setTimeout(() => done("ETIMEDOUT"), 500);
    sock.once("connect", () => done(""));
    sock.once("error", (e: NodeJS.ErrnoException) => done(e.code ?? "EUNKNOWN"));
  });
}

/**
 * Removes the socket named by `<bundle>/address` when nothing listens on it any more (connect refused),
 * which is what a killed daemon leaves behind (bench/RESULTS.md, Survival). A live or slow socket (another
 * container of the group, a concurrent `start`) is left alone; the inode is re-checked before unlinking.
 * Returns a warning on failure.
 */
export async function removeDeadSocket(bundle: string): Promise<string | undefined> {
  const m = /^unix:\/\/(\/\S+)/.exec(readText(path.join(bundle, "address"))?.trim() ?? "");
  if (!m?.[1]) return undefined;
  const sock = m[1];
  let ino: number;
  try {
    const st = lstatSync(sock);
    if (!st.isSocket()) return undefined;
    ino = st.ino;
  } catch {
    return undefined; // already removed by the daemon at exit
  }
  if ((await connectCode(sock)) !== "ECONNREFUSED") return undefined;
  try {
    if (lstatSync(sock).ino === ino) unlinkSync(sock);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") return `Cannot remove the dead shim's socket "${sock}": ${(e as Error).message}`;
  }
  return undefined;
}

/** The `delete` entry point: warnings on stderr, the DeleteResponse on stdout, exit 0. */
export async function deleteAction(flags: Flags): Promise<void> {
  const { out, warnings } = await runDelete(flags, flags.bundle || process.cwd());
  for (const w of warnings) writeSync(2, `time="${new Date().toISOString()}" level=warning msg=${JSON.stringify(w)}\n`);
  for (let off = 0; off < out.length; ) off += writeSync(1, out, off, out.length - off);
}
