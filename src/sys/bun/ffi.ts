// Folder src/sys/bun:
// Owns: the Bun side of src/sys's native seam: libc through bun:ffi, and fd readiness from a Worker blocked
//   in poll(2). Loaded only on Bun, by ../ffi.ts.
// Must not import: cgroups, gen, runc, sandbox, shim, stdio, task, ttrpc.

/**
 * The Bun side of the native seam (ffi.ts): libc through `bun:ffi`. Loaded only on Bun (ffi.ts checks
 * `process.versions.bun` before requiring this file). koffi loads on Bun too, but its libuv poll handle
 * calls `uv_poll_init_socket`, which Bun's libuv shim lacks, and the process aborts.
 *
 * - errno: bun:ffi does not save it, so it is read through glibc's `__errno_location()` right after the
 *   call. Nothing runs on this thread in between but JS (errno is only written by a failing libc call).
 * - Variadic fcntl/ioctl are declared with their one integer/pointer argument: on x86_64 and arm64 Linux
 *   such an argument travels in the same register either way.
 * - Watching: Bun has no fd watcher that does not read, and watchReadable must not read (the SCM_RIGHTS
 *   message has to stay for recvmsg). So a Worker blocks in poll(2) and posts readiness to this thread
 *   (bun/watch.ts): no timer, nothing runs while no watched fd changes. It replaced poll(2) with timeout 0 on a
 *   timer backing off to 50/250 ms (up to that much added latency, and 4-20 wake-ups a second per watch).
 *   An eventfd may be read, so watchEventfd uses Bun's own fd reader instead (bun/stream-eventfd.ts), which
 *   spares the Worker's heap; figures for both in bench/RESULTS.md.
 */
import { createRequire } from "node:module";
import type { Block, Natives } from "../ffi-types.js";
import { streamEventfd } from "./stream-eventfd.js";
import { watchFd } from "./watch.js";

/** The parts of bun:ffi used here (typed locally: the project does not depend on bun-types). */
interface BunFfi {
  dlopen(path: string, symbols: Record<string, { args: string[]; returns: string }>): {
    symbols: Record<string, (...args: unknown[]) => number | bigint>;
  };
  ptr(view: ArrayBufferView): number;
  read: { i32(ptr: number, offset: number): number };
}

const POLLIN = 0x1;
const POLLOUT = 0x4;
const POLLRDHUP = 0x2000;

/** NUL-terminated bytes for a `const char *`, or null. */
function cstr(s: string | null): Buffer | null {
  return s === null ? null : Buffer.from(`${s}\0`, "utf8");
}

export function bunNatives(): Natives {
  const ffi = createRequire(import.meta.url)("bun:ffi") as BunFfi;
  const { symbols: c } = ffi.dlopen("libc.so.6", {
    prctl: { args: ["i32", "u64", "u64", "u64", "u64"], returns: "i32" },
    waitpid: { args: ["i32", "ptr", "i32"], returns: "i32" },
    pipe2: { args: ["ptr", "i32"], returns: "i32" },
    fcntl: { args: ["i32", "i32", "i32"], returns: "i32" },
    recvmsg: { args: ["i32", "ptr", "i32"], returns: "i64" },
    ioctl: { args: ["i32", "u64", "ptr"], returns: "i32" },
    mount: { args: ["ptr", "ptr", "ptr", "u64", "ptr"], returns: "i32" },
    umount2: { args: ["ptr", "i32"], returns: "i32" },
    close: { args: ["i32"], returns: "i32" },
    eventfd: { args: ["u32", "i32"], returns: "i32" },
    getsockopt: { args: ["i32", "i32", "i32", "ptr", "ptr"], returns: "i32" },
    poll: { args: ["ptr", "u64", "i32"], returns: "i32" },
    __errno_location: { args: [], returns: "ptr" },
  }) as unknown as { symbols: Record<string, (...args: unknown[]) => number> };
  const errnoAt = Number(c.__errno_location!());
  /** The memory behind each Block, kept reachable while the Block is. */
  const mem = new WeakMap<Block, Uint8Array>();
  const watchLibc = {
    poll: (pfd: Uint8Array, nfds: number, timeout: number) => c.poll!(pfd, nfds, timeout),
    eventfd: (initval: number, flags: number) => c.eventfd!(initval, flags),
    close: (fd: number) => c.close!(fd),
  };

  return {
    runtime: "bun",
    prctl: (option, arg2) => c.prctl!(option, arg2, 0, 0, 0),
    waitpid: (pid, status, options) => c.waitpid!(pid, status, options),
    pipe2: (fds, flags) => c.pipe2!(fds, flags),
    fcntl: (fd, cmd, arg) => c.fcntl!(fd, cmd, arg ?? 0),
    ioctl: (fd, req, arg) => c.ioctl!(fd, req, arg),
    recvmsg: (fd, msg, flags) => Number(c.recvmsg!(fd, mem.get(msg), flags)),
    mount: (source, target, fstype, flags, data) => c.mount!(cstr(source), cstr(target), cstr(fstype), flags, cstr(data)),
    umount2: (target, flags) => c.umount2!(cstr(target), flags),
    close: (fd) => c.close!(fd),
    eventfd: (initval, flags) => c.eventfd!(initval, flags),
    getsockopt: (fd, level, name, val, len) => c.getsockopt!(fd, level, name, val, len),
    errno: () => ffi.read.i32(errnoAt, 0),
    alloc(size) {
      const bytes = new Uint8Array(size);
      const block: Block = {
        view: new DataView(bytes.buffer, bytes.byteOffset, size),
        address: BigInt(ffi.ptr(bytes)),
        free: () => mem.delete(block),
      };
      mem.set(block, bytes);
      return block;
    },
    watchReadable: (fd, cb) => watchFd(watchLibc, fd, POLLIN | POLLRDHUP, cb),
    watchWritable: (fd, cb) => watchFd(watchLibc, fd, POLLOUT, cb),
    watchEventfd: (fd, cb) => streamEventfd(fd, cb),
  };
}
