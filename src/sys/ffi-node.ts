/**
 * The Node side of the native seam (ffi.ts): libc through koffi. koffi is loaded on the first call,
 * not at import time, so importing src/sys stays cheap.
 *
 * Watching: Node cannot wrap an eventfd or a paused socket's fd in a stream (`net.Socket({ fd })` refuses
 * an eventfd, libuv guesses its handle type as UNKNOWN; `fs.read` would block a threadpool thread), so
 * fds are watched with koffi's libuv poll handle (`koffi.node.poll`, level-triggered, on the main loop).
 * A libuv poll handle must not share its fd with another libuv handle: libc.ts watches a dup.
 */
import { createRequire } from "node:module";
import { readEventfdCounter } from "./counter.js";
import type { Block, Natives, Watch } from "./ffi-types.js";

/* eslint-disable @typescript-eslint/no-explicit-any -- koffi functions are untyped; `any` stays in this file */
type CFn = (...args: any[]) => any;
type Koffi = typeof import("koffi");

export function nodeNatives(): Natives {
  const koffi = createRequire(import.meta.url)("koffi") as Koffi;
  const c = koffi.load("libc.so.6");
  const f = {
    prctl: c.func("int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)") as CFn,
    waitpid: c.func("int waitpid(int pid, _Out_ int *status, int options)") as CFn,
    pipe2: c.func("int pipe2(_Out_ int *fds, int flags)") as CFn,
    fcntl: c.func("int fcntl(int fd, int cmd, ...)") as CFn,
    recvmsg: c.func("intptr_t recvmsg(int fd, void *msg, int flags)") as CFn,
    ioctl: c.func("int ioctl(int fd, unsigned long req, ...)") as CFn,
    mount: c.func("int mount(const char *src, const char *target, const char *fstype, unsigned long flags, const char *data)") as CFn,
    umount2: c.func("int umount2(const char *target, int flags)") as CFn,
    close: c.func("int close(int fd)") as CFn,
    eventfd: c.func("int eventfd(unsigned int initval, int flags)") as CFn,
    getsockopt: c.func("int getsockopt(int fd, int level, int optname, _Inout_ uint8_t *optval, _Inout_ uint32_t *optlen)") as CFn,
  };
  /** The raw koffi allocation behind each Block (passed to recvmsg as `void *`). */
  const raw = new WeakMap<Block, unknown>();

  const poll = (fd: number, opts: { readable?: boolean; writable?: boolean; disconnect?: boolean }, cb: () => void): Watch => {
    const handle = koffi.node.poll(fd, opts, cb);
    return { close: () => handle.close(), unref: () => handle.unref() };
  };

  return {
    runtime: "node",
    prctl: (option, arg2) => Number(f.prctl(option, arg2, 0, 0, 0)),
    waitpid: (pid, status, options) => Number(f.waitpid(pid, status, options)),
    pipe2: (fds, flags) => Number(f.pipe2(fds, flags)),
    fcntl: (fd, cmd, arg) => Number(arg === undefined ? f.fcntl(fd, cmd) : f.fcntl(fd, cmd, "int", arg)),
    ioctl: (fd, req, arg) => Number(f.ioctl(fd, req, arg instanceof Uint16Array ? "uint16_t *" : "int *", arg)),
    recvmsg: (fd, msg, flags) => Number(f.recvmsg(fd, raw.get(msg), flags)),
    mount: (source, target, fstype, flags, data) => Number(f.mount(source, target, fstype, flags, data)),
    umount2: (target, flags) => Number(f.umount2(target, flags)),
    close: (fd) => Number(f.close(fd)),
    eventfd: (initval, flags) => Number(f.eventfd(initval, flags)),
    getsockopt: (fd, level, name, val, len) => Number(f.getsockopt(fd, level, name, val, len)),
    errno: () => koffi.errno(),
    alloc(size) {
      const mem = koffi.alloc("uint8", size);
      const block: Block = {
        view: new DataView(koffi.view(mem, size)),
        address: BigInt(koffi.address(mem)),
        free: () => koffi.free(mem),
      };
      raw.set(block, mem);
      return block;
    },
    watchReadable: (fd, cb) => poll(fd, { readable: true, disconnect: true }, cb),
    watchWritable: (fd, cb) => poll(fd, { writable: true, disconnect: true }, cb),
    watchEventfd(fd, cb) {
      const buf = Buffer.alloc(8);
      return poll(fd, { readable: true }, () => {
        const n = readEventfdCounter(fd, buf);
        if (n > 0n) cb(n);
      });
    },
  };
}
