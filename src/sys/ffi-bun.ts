/**
 * The Bun side of the native seam (ffi.ts): libc through `bun:ffi`. Loaded only on Bun (ffi.ts checks
 * `process.versions.bun` before requiring this file). koffi loads on Bun too, but its libuv poll handle
 * calls `uv_poll_init_socket`, which Bun's libuv shim lacks, and the process aborts.
 *
 * - errno: bun:ffi does not save it, so it is read through glibc's `__errno_location()` right after the
 *   call. Nothing runs on this thread in between but JS (errno is only written by a failing libc call).
 * - Variadic fcntl/ioctl are declared with their one integer/pointer argument: on x86_64 and arm64 Linux
 *   such an argument travels in the same register either way.
 * - Watching: Bun has no fd watcher that does not read. watchReadable must not read (the SCM_RIGHTS
 *   message has to stay for recvmsg). For an eventfd, `Bun.file(fd).stream()` works and idles at no CPU,
 *   but it reads the counter on Bun's loop before JS gets it, so a synchronous flush (oom.ts
 *   `stop({ flush: true })` at init's exit) could find it already taken (not seen in a test, not ruled
 *   out either); it also cannot be unref'd, and its dup of the fd closes only some time after a cancel.
 *   So both poll(2) with timeout 0 on an unref'd timer that backs off from 1 ms to a cap (50 ms; 250 ms
 *   for an eventfd) and starts again at 1 ms after each hit. Measured idle (Bun 1.4.5): 1.2 ms CPU/s with
 *   no watch, 1.7 with one eventfd watch, 2.9 with ten; a 1 ms timer used 35-48 ms in 1 s.
 *   test/sys/poll-backoff.test.ts counts the looks (CPU time alone does not tell the two apart on a loaded
 *   machine: a CI run saw 32 ms with the backoff in place).
 *   The console socket usually has the message on the first look: runc sends it right after connecting.
 */
import { createRequire } from "node:module";
import { readEventfdCounter } from "./counter.js";
import type { Block, Natives, Watch } from "./ffi-types.js";

/** The parts of bun:ffi used here (typed locally: the project does not depend on bun-types). */
interface BunFfi {
  dlopen(path: string, symbols: Record<string, { args: string[]; returns: string }>): {
    symbols: Record<string, (...args: unknown[]) => number | bigint>;
  };
  ptr(view: ArrayBufferView): number;
  read: { i32(ptr: number, offset: number): number };
}

/** Longest wait between two poll(2) calls of watchReadable. */
export const MAX_BACKOFF_MS = 50;
/** The same for an eventfd watch: long-lived (one per cgroup v1 container), and an OOM that kills init is
 * flushed synchronously at its exit, so a later look only delays reporting OOMs of other processes. */
export const EVENTFD_MAX_BACKOFF_MS = 250;
const POLLIN = 0x1;
const POLLRDHUP = 0x2000;
const POLLNVAL = 0x20;

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
    watchReadable: (fd, cb) => pollOnTimer(c.poll!, fd, POLLIN | POLLRDHUP, MAX_BACKOFF_MS, cb),
    watchEventfd(fd, cb) {
      const buf = Buffer.alloc(8);
      return pollOnTimer(c.poll!, fd, POLLIN, EVENTFD_MAX_BACKOFF_MS, () => {
        const n = readEventfdCounter(fd, buf);
        if (n > 0n) cb(n);
      });
    },
  };
}

/** Calls `cb` whenever poll(2) reports `events` (or an error/hang-up) on `fd`, looking on a backing-off timer.
 * Exported for test/sys/poll-backoff.test.ts, which counts its looks under mocked timers. */
export function pollOnTimer(poll: (...args: unknown[]) => number, fd: number, events: number, maxMs: number, cb: () => void): Watch {
  const pfd = new Uint8Array(8); // struct pollfd { int fd; short events; short revents; }
  const view = new DataView(pfd.buffer);
  view.setInt32(0, fd, true);
  view.setInt16(4, events, true);
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let ref = true;
  let delay = 1;
  const arm = (ms: number) => {
    timer = setTimeout(look, ms);
    if (!ref) timer.unref();
  };
  const look = () => {
    if (closed) return;
    view.setInt16(6, 0, true);
    const hit = poll(pfd, 1, 0) > 0 ? view.getInt16(6, true) : 0;
    if ((hit & POLLNVAL) !== 0) return; // fd closed under the watch: nothing more will come
    if (hit !== 0) {
      delay = 1;
      cb();
    } else {
      delay = Math.min(delay * 2, maxMs);
    }
    if (!closed) arm(delay);
  };
  arm(0);
  return {
    close: () => {
      closed = true;
      clearTimeout(timer);
    },
    unref: () => {
      ref = false;
      timer?.unref();
    },
  };
}
