/**
 * Unix socket plumbing for `start` and the daemon: bind with stale-socket recovery (shared/protocol.md
 * §2.6 step 3), liveness probes, the listening fd handed to the daemon, removal at exit, and the
 * peer-credential check on accepted connections.
 *
 * Who may connect: the socket directory is created 0700 and the socket is 0600 before it appears under
 * its name (as the Go shim library does, `NewSocket`; an existing directory is left as it is, as there),
 * so only root reaches it through the filesystem. The daemon also checks every connection's SO_PEERCRED
 * ({@link requireSameUser}), as Go shims do with ttrpc's `UnixSocketRequireSameUser`: this is the only
 * guard where the path does not protect (an abstract socket, a directory someone opened up).
 */
import { chmodSync, linkSync, lstatSync, unlinkSync } from "node:fs";
import net from "node:net";
import type { Logger } from "../../log.js";
import { peerCredentials } from "../../sys/index.js";

/** How long a liveness probe may take before the socket counts as dead. */
const PROBE_TIMEOUT_MS = 1000;
const BIND_ATTEMPTS = 3;

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && "code" in err && typeof err.code === "string" ? err.code : undefined;
}

/** Resolves true if something accepts a connection on `path` within `timeoutMs`. */
export function probeSocket(path: string, timeoutMs: number = PROBE_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ path });
    const done = (live: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(live);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

function listen(path: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen({ path, backlog: 511 }, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}

/** Removes `path` if it is a socket (or any non-directory leftover). Never throws. */
export function removeSocket(path: string): void {
  try {
    if (lstatSync(path).isDirectory()) return;
    unlinkSync(path);
  } catch {
    // ENOENT: nothing to remove
  }
}

/**
 * Binds and listens on `path` (mode 0600). If a live shim already listens there, returns "live".
 *
 * Invariant: a socket appears at `path` only once it is listening. The socket is bound and listening
 * under a private temporary name first and then hard-linked to `path`; link(2) fails with EEXIST if
 * anything is there, so two concurrent `start`s for one pod cannot both win (a plain bind-then-listen
 * leaves a window in which the other side's probe is refused, deems the socket stale and replaces it).
 * A socket at `path` that refuses connections is stale: it is removed (only if it is still the same
 * inode that was probed) and the link retried.
 */
export async function bindSocket(path: string): Promise<net.Server | "live"> {
  const tmp = `${path}.${process.pid}`;
  removeSocket(tmp);
  let server: net.Server;
  try {
    server = await listen(tmp);
    chmodSync(tmp, 0o600);
  } catch (err) {
    throw new Error(`Cannot listen on "${tmp}": ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  let lastErr: unknown;
  try {
    for (let attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
      try {
        linkSync(tmp, path);
        return server;
      } catch (err) {
        lastErr = err;
        if (errnoCode(err) !== "EEXIST") break;
      }
      const probed = inode(path);
      if (await probeSocket(path)) {
        server.close();
        return "live";
      }
      if (probed !== undefined && inode(path) === probed) removeSocket(path);
    }
  } finally {
    removeSocket(tmp);
  }
  server.close();
  const why = lastErr instanceof Error ? lastErr.message : String(lastErr);
  throw new Error(`Cannot listen on "${path}": ${why}`, { cause: lastErr });
}

function inode(path: string): number | undefined {
  try {
    return lstatSync(path).ino;
  } catch {
    return undefined;
  }
}

/** The OS fd of a listening `net.Server` (to pass to the daemon as fd 3). */
export function listenerFd(server: net.Server): number {
  const handle = (server as unknown as { _handle?: { fd?: unknown } })._handle;
  const fd = handle?.fd;
  if (typeof fd !== "number" || fd < 0) throw new Error("Cannot get the listening socket's fd");
  return fd;
}

/** The OS fd of an accepted (or connected) unix socket. */
function socketFd(socket: net.Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== "number" || fd < 0) throw new Error("Cannot get the connection's fd");
  return fd;
}

/**
 * A ttrpc `authorize` hook: serves a connection only if its peer has this process's effective uid and
 * gid (containerd/ttrpc `UnixSocketRequireSameUser`); anything else, including credentials that cannot
 * be read, is refused and logged at warn with the peer's uid, gid and pid.
 */
export function requireSameUser(log: Logger, self: { uid: number; gid: number } = { uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0 }): (socket: net.Socket) => boolean {
  return (socket) => {
    let peer: { pid: number; uid: number; gid: number };
    try {
      peer = peerCredentials(socketFd(socket));
    } catch (err) {
      log.warn("refusing connection: cannot read peer credentials", { error: err });
      return false;
    }
    if (peer.uid === self.uid && peer.gid === self.gid) return true;
    log.warn("refusing connection from another user", { peer_uid: peer.uid, peer_gid: peer.gid, peer_pid: peer.pid, uid: self.uid, gid: self.gid });
    return false;
  };
}
