// Folder src/sys:
// Owns: the only native code (koffi on Node, bun:ffi on Bun) behind one seam: subreaper and reaping, pipe2, fds
//   and fd streams, eventfd, SCM_RIGHTS, SO_PEERCRED, mount.
// Must not import: cgroups, gen, runc, sandbox, shim, stdio, task, ttrpc.

/** Reading an eventfd's counter: Node's watch (ffi-node.ts) and a synchronous EventFd.read (eventfd.ts). */
import { readSync } from "node:fs";

/** Reads (and so resets) the non-blocking eventfd `fd`'s counter into `buf` (8 bytes); 0n when not signalled. */
export function readEventfdCounter(fd: number, buf: Buffer): bigint {
  try {
    if (readSync(fd, buf, 0, 8, null) === 8) return buf.readBigUInt64LE(0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
  }
  return 0n;
}
