/**
 * Unix socket plumbing for `start` and the daemon: bind with stale-socket recovery (shared/protocol.md
 * §2.6 step 3), liveness probes, the listening fd handed to the daemon, and removal at exit.
 */
import { chmodSync, lstatSync, unlinkSync } from "node:fs";
import net from "node:net";

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
 * Binds and listens on `path` (mode 0600). If the path is in use and a probe connects, a live shim owns it:
 * returns "live". If the probe fails, the socket is stale: it is removed and the bind retried.
 */
export async function bindSocket(path: string): Promise<net.Server | "live"> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
    try {
      const server = await listen(path);
      chmodSync(path, 0o600);
      return server;
    } catch (err) {
      lastErr = err;
      if (errnoCode(err) !== "EADDRINUSE") break;
      if (await probeSocket(path)) return "live";
      removeSocket(path);
    }
  }
  const why = lastErr instanceof Error ? lastErr.message : String(lastErr);
  throw new Error(`Cannot listen on "${path}": ${why}`, { cause: lastErr });
}

/** The OS fd of a listening `net.Server` (to pass to the daemon as fd 3). */
export function listenerFd(server: net.Server): number {
  const handle = (server as unknown as { _handle?: { fd?: unknown } })._handle;
  const fd = handle?.fd;
  if (typeof fd !== "number" || fd < 0) throw new Error("Cannot get the listening socket's fd");
  return fd;
}
