/**
 * The types of the native seam (ffi.ts): what ffi-node.ts and bun/ffi.ts implement. Apart from ffi.ts so
 * that the implementations import their contract without importing the module that loads them.
 */
/** Memory at a fixed address (for structs holding pointers, like recvmsg's msghdr). Free it once. */
export interface Block {
  readonly view: DataView;
  readonly address: bigint;
  free(): void;
}

/** A watch started by {@link Natives.watchReadable}, {@link Natives.watchWritable} or {@link Natives.watchEventfd}. */
export interface Watch {
  /** Stops watching (idempotent). The fd is left open: its owner closes it. */
  close(): void;
  /** The watch no longer keeps the process alive (where the runtime allows it; see bun/ffi.ts). */
  unref(): void;
}

export interface Natives {
  /** "node" (koffi) or "bun" (bun:ffi). */
  readonly runtime: "node" | "bun";
  prctl(option: number, arg2: number): number;
  waitpid(pid: number, status: Int32Array, options: number): number;
  pipe2(fds: Int32Array, flags: number): number;
  /** fcntl(fd, cmd) or, with `arg`, fcntl(fd, cmd, int arg). */
  fcntl(fd: number, cmd: number, arg?: number): number;
  /** ioctl(fd, req, pointer to `arg`). */
  ioctl(fd: number, req: number, arg: Uint16Array | Int32Array): number;
  /** recvmsg(fd, msghdr at the start of `msg`, flags). */
  recvmsg(fd: number, msg: Block, flags: number): number;
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): number;
  umount2(target: string, flags: number): number;
  close(fd: number): number;
  eventfd(initval: number, flags: number): number;
  /** getsockopt(fd, level, name, val, len); `len[0]` holds val's size in, the value's size out. */
  getsockopt(fd: number, level: number, name: number, val: Uint8Array, len: Uint32Array): number;
  /** errno of the last failing call above, on this thread. */
  errno(): number;
  alloc(size: number): Block;
  /**
   * Calls `cb` once `fd` is readable or hung up, without reading from it (so an SCM_RIGHTS message is
   * still there for recvmsg). Level-triggered: `cb` may be called again until the watch is closed.
   */
  watchReadable(fd: number, cb: () => void): Watch;
  /** Calls `cb` once `fd` has room for a write, or hung up. Level-triggered like {@link watchReadable}. */
  watchWritable(fd: number, cb: () => void): Watch;
  /**
   * Calls `cb` with the counter each time the non-blocking eventfd `fd` is signalled; the counter is read
   * (so reset) before `cb`. Never calls `cb` with 0. On Bun the runtime reads it on its own loop before
   * `cb` runs, so a synchronous read in between finds 0, and the watch cannot be unref'd (bun/stream-eventfd.ts).
   */
  watchEventfd(fd: number, cb: (count: bigint) => void): Watch;
}
