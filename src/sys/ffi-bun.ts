/**
 * The Bun side of the native seam (ffi.ts): libc through `bun:ffi`. Loaded only on Bun (ffi.ts checks
 * `process.versions.bun` before requiring this file). koffi loads on Bun too, but its libuv poll handle
 * calls `uv_poll_init_socket`, which Bun's libuv shim lacks, and the process aborts.
 *
 * - errno: bun:ffi does not save it, so it is read through glibc's `__errno_location()` right after the
 *   call. Nothing runs on this thread in between but JS (errno is only written by a failing libc call).
 * - Variadic fcntl/ioctl are declared with their one integer/pointer argument: on x86_64 and arm64 Linux
 *   such an argument travels in the same register either way.
 * - watchEventfd reads the eventfd with `Bun.file(fd).stream()`, which waits on Bun's own epoll loop
 *   (measured: no CPU while idle). It keeps the process alive; every EventFd is closed by its owner.
 * - watchReadable must not read (the SCM_RIGHTS message has to stay for recvmsg) and Bun has no fd
 *   watcher that does not read, so it polls with poll(2), timeout 0, on an unref'd timer backing off from
 *   1 ms to {@link MAX_BACKOFF_MS}. Its one user (the console socket) usually has the message on the
 *   first look: runc sends it right after connecting.
 */
import { createRequire } from "node:module";
import type { Block, Natives, Watch } from "./ffi.js";

/** The parts of bun:ffi used here (typed locally: the project does not depend on bun-types). */
interface BunFfi {
  dlopen(path: string, symbols: Record<string, { args: string[]; returns: string }>): {
    symbols: Record<string, (...args: unknown[]) => number | bigint>;
  };
  ptr(view: ArrayBufferView): number;
  read: { i32(ptr: number, offset: number): number };
}

interface BunFileStream {
  file(fd: number): { stream(): ReadableStream<Uint8Array> };
}

/** Longest wait between two poll(2) calls of watchReadable. */
export const MAX_BACKOFF_MS = 50;
const POLLIN = 0x1;
const POLLRDHUP = 0x2000;

/** NUL-terminated bytes for a `const char *`, or null. */
function cstr(s: string | null): Buffer | null {
  return s === null ? null : Buffer.from(`${s}\0`, "utf8");
}

export function bunNatives(): Natives {
  const ffi = createRequire(import.meta.url)("bun:ffi") as BunFfi;
  const bun = (globalThis as unknown as { Bun: BunFileStream }).Bun;
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
    watchReadable(fd, cb) {
      const pfd = new Uint8Array(8);
      const view = new DataView(pfd.buffer);
      view.setInt32(0, fd, true);
      view.setInt16(4, POLLIN | POLLRDHUP, true);
      let timer: NodeJS.Timeout | undefined;
      let closed = false;
      let delay = 1;
      const look = () => {
        if (closed) return;
        view.setInt16(6, 0, true);
        if (c.poll!(pfd, 1, 0) > 0 && view.getInt16(6, true) !== 0) {
          cb();
          delay = 1;
        } else {
          delay = Math.min(delay * 2, MAX_BACKOFF_MS);
        }
        if (!closed) timer = setTimeout(look, delay).unref();
      };
      timer = setTimeout(look, 0).unref();
      return {
        close: () => {
          closed = true;
          clearTimeout(timer);
        },
        unref: () => {},
      };
    },
    watchEventfd(fd, cb): Watch {
      const reader = bun.file(fd).stream().getReader();
      let closed = false;
      void (async () => {
        while (!closed) {
          const { done, value } = await reader.read();
          if (done || closed) return;
          // Each read of an eventfd gives one 8-byte counter; a chunk could hold several.
          let n = 0n;
          const v = new DataView(value.buffer, value.byteOffset, value.byteLength);
          for (let off = 0; off + 8 <= value.byteLength; off += 8) n += v.getBigUint64(off, true);
          if (n > 0n) cb(n);
        }
      })().catch(() => {});
      return {
        close: () => {
          if (closed) return;
          closed = true;
          void reader.cancel().catch(() => {});
        },
        unref: () => {},
      };
    },
  };
}
