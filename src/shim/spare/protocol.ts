// Folder src/shim/spare:
// Owns: the warm spare, a booted idle daemon that a pod-mode `start` hands its pod to: protocol.ts is `start`'s
//   half of the handshake (loaded by manager/warm.ts), spare.ts the spare's own (it serves through shim/daemon).
// Must not import: cgroups, runc, sandbox, shim/entry, shim/events, shim/manager, stdio, task, ttrpc.

/**
 * The warm spare (issue 19, docs/config.md `warm`): one booted, idle daemon per containerd address and
 * namespace, which a pod-mode `start` hands its new pod to instead of waiting for a daemon to boot.
 *
 * This file is what `start` and the spare share, and `start`'s half of the handshake: the spare's private
 * socket and pid file, the build id, and Adopt (one JSON line each way over the private socket, so `start`
 * loads no generated code). `start` loads it: node: modules only, nothing of the daemon.
 *
 * Owns: the spare's socket name, build identity, the Adopt exchange, killing a hung spare.
 * Must not import: shim/daemon, shim/manager (spare.ts, the spare's side, imports shim/daemon).
 */
import { createHash } from "node:crypto";
import { readFileSync, realpathSync, rmSync, statSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Everything `start` may spend on a spare (connect, Adopt, answer) before it spawns a daemon itself. */
export const ADOPT_DEADLINE_MS = 200;

/** Set by `start` for a spare: the Node flags (JSON array) it was spawned with, which an Adopt must match. */
export const SPARE_NODE_FLAGS_ENV = "SHIM_TS_SPARE_NODE_FLAGS";
/** How long `start` waits for a hung spare it killed to be gone (its sockets close with it). */
const KILL_WAIT_MS = 1000;
const MAX_LINE = 64 * 1024;

/** What `start` asks of a spare. Everything a cold daemon gets from its command line, env and cwd. */
export interface AdoptRequest {
  build: string;
  id: string;
  bundle: string;
  /** The pod's socket: the spare binds it (socket.ts bindSocket, so a race with another `start` stays atomic). */
  socket: string;
  debug: boolean;
  /** The config file's `log_level` (SHIM_TS_DAEMON_LOG_LEVEL of a cold daemon), if set. */
  logLevel?: string;
  /** containerd's ttrpc address (BootstrapParams on 2.3+, else TTRPC_ADDRESS). */
  ttrpcAddress?: string;
  /** The Node flags a cold daemon would get; a spare booted with others refuses. */
  nodeFlags: string[];
}

/**
 * The spare's answer. Refusals: "build" (another build: never adopted; the spare exits), "flags" (other Node
 * flags; it exits), "busy" (another `start` is adopting it), "live" (the pod's socket is served already:
 * `start` joins that daemon; the spare stays), "failed" (it could not serve; it exits).
 */
export type AdoptAnswer = { ok: true; pid: number } | { ok: false; reason: string };

/** The spare's private socket in `socketDir`: one name per containerd address and namespace, whatever the build. */
export function spareSocketPath(containerdAddress: string, namespace: string, socketDir: string): string {
  const hash = createHash("sha256").update(`${containerdAddress}\0${namespace}\0warm-spare`, "utf8").digest("hex");
  return path.posix.join(socketDir, hash);
}

/** The file the spare that holds the socket writes its pid to, right after binding it (so a hung one can be killed). */
export function sparePidFile(spareSocket: string): string {
  return `${spareSocket}.pid`;
}

/**
 * This build: the interpreter, and the identity (real path, inode, size, mtime) of the files that make the
 * program (package.json, the entry, the daemon, the spare), or of the single executable. A copy, an
 * upgrade or a rebuild gives another id. About 0.1 ms.
 */
export function buildId(packagedExe?: string): string {
  const h = createHash("sha256").update(`${process.execPath}\0${process.version}\0${process.versions.bun ?? ""}`);
  const files = packagedExe !== undefined ? [packagedExe] : ["../../../../package.json", "../entry/main.js", "../daemon/serve.js", "./spare.js"]
    .map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
  for (const file of files) {
    try {
      const st = statSync(file);
      h.update(`\0${realpathSync(file)}:${st.ino}:${st.size}:${st.mtimeMs}`);
    } catch {
      h.update(`\0${file}:missing`);
    }
  }
  return h.digest("hex").slice(0, 32);
}

/** Reads one newline-terminated JSON value from `sock`. */
export function readLine(sock: net.Socket, onLine: (value: unknown) => void, onBad: () => void): void {
  let buf = "";
  const onData = (chunk: Buffer): void => {
    buf += chunk.toString("utf8");
    const nl = buf.indexOf("\n");
    if (nl < 0) {
      if (buf.length > MAX_LINE) done(undefined);
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(buf.slice(0, nl));
    } catch {
      return done(undefined);
    }
    done({ value });
  };
  const done = (got: { value: unknown } | undefined): void => {
    sock.off("data", onData);
    if (got === undefined) onBad();
    else onLine(got.value);
  };
  sock.on("data", onData);
}

/**
 * Asks the spare at `spareSocket` to adopt the pod. Never throws. `{ ok: false, reason: "none" }`: no spare
 * listens there; "deadline": it did not answer in time (it may be hung: {@link killSpare} it); "closed":
 * it hung up without an answer.
 */
export function adopt(spareSocket: string, req: AdoptRequest, deadlineMs = ADOPT_DEADLINE_MS): Promise<AdoptAnswer> {
  return new Promise((resolve) => {
    const sock = net.connect({ path: spareSocket });
    let connected = false;
    const finish = (a: AdoptAnswer): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(a);
    };
    const timer = setTimeout(() => finish({ ok: false, reason: "deadline" }), deadlineMs);
    sock.once("error", () => finish({ ok: false, reason: connected ? "closed" : "none" }));
    sock.once("close", () => finish({ ok: false, reason: "closed" }));
    sock.once("connect", () => {
      connected = true;
      sock.write(`${JSON.stringify(req)}\n`);
    });
    readLine(sock, (v) => {
      const a = v as { ok?: unknown; pid?: unknown; reason?: unknown } | null;
      if (a?.ok === true && typeof a.pid === "number" && Number.isInteger(a.pid) && a.pid > 0) finish({ ok: true, pid: a.pid });
      else finish({ ok: false, reason: typeof a?.reason === "string" ? a.reason : "bad answer" });
    }, () => finish({ ok: false, reason: "bad answer" }));
  });
}

/** The pid in the spare's pid file, if that process is still the spare of `spareSocket` (not a reused pid). */
export function sparePid(spareSocket: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(sparePidFile(spareSocket), "utf8"), 10);
    if (!Number.isInteger(pid) || pid <= 1) return undefined;
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    const i = argv.indexOf("-spare");
    return i >= 0 && argv[i + 1] === spareSocket ? pid : undefined;
  } catch {
    return undefined;
  }
}

function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z";
  } catch {
    return true;
  }
}

/**
 * SIGKILLs the spare of `spareSocket` (a hung or unanswering one) and waits, bounded, until it is gone, so
 * that a socket it bound refuses connections (then bindSocket takes it for stale). Removes its socket and
 * pid file. Returns the pid killed, if any.
 */
export async function killSpare(spareSocket: string, waitMs = KILL_WAIT_MS): Promise<number | undefined> {
  const pid = sparePid(spareSocket);
  if (pid !== undefined) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
    for (const deadline = Date.now() + waitMs; !gone(pid) && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
  rmSync(spareSocket, { force: true });
  rmSync(sparePidFile(spareSocket), { force: true });
  return pid;
}
