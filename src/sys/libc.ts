/**
 * The libc calls used by the rest of src/sys, over the native seam (ffi.ts: koffi on Node, bun:ffi on
 * Bun). Nothing outside src/sys imports this file. The native library is loaded on first use, not at
 * import time, so importing src/sys stays cheap. Every failing call becomes a `ShimError` whose message
 * names the call and the errno (`Cannot pipe2: EMFILE`). Only 64-bit little-endian Linux (x86_64, arm64) is supported: the hand-built
 * `struct msghdr` in {@link recvmsgOneFd} relies on that layout.
 */
import { constants as osConstants } from "node:os";
import { ShimError, type Code } from "../errdefs.js";
import { natives, type Watch } from "./ffi.js";

const lib = natives;

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(osConstants.errno).map(([name, n]) => [n, name] as [number, string]),
);

/** errno of the last failing native call on this thread. */
export function lastErrno(): number {
  return lib().errno();
}

/** The symbolic name of an errno value ("EMFILE"), or "errno N" when unknown. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

/** Errno values, from Node's table (Linux numbers). */
export const E = osConstants.errno;

/** A failed libc call, with its errno kept for callers in src/sys that branch on it. */
export class SysError extends ShimError {
  constructor(
    readonly call: string,
    readonly errno: number,
    detail?: string,
  ) {
    super(codeForErrno(errno), `Cannot ${call}${detail ? ` ${detail}` : ""}: ${errnoName(errno)}`);
  }
}

function codeForErrno(errno: number): Code {
  switch (errno) {
    case E.ENOENT:
    case E.ESRCH:
    case E.ECHILD:
      return "NotFound";
    case E.EEXIST:
      return "AlreadyExists";
    case E.EINVAL:
    case E.EBADF:
    case E.ENAMETOOLONG:
      return "InvalidArgument";
    case E.EAGAIN:
    case E.EBUSY:
      return "Unavailable";
    case E.EMFILE:
    case E.ENFILE:
    case E.ENOMEM:
    case E.ENOSPC:
      return "ResourceExhausted";
    case E.EPERM:
    case E.EACCES:
      return "FailedPrecondition";
    default:
      return "Internal";
  }
}

function check(ret: number | bigint, call: string, detail?: string): number {
  const n = Number(ret);
  if (n < 0) throw new SysError(call, lastErrno(), detail);
  return n;
}

export const PR_SET_CHILD_SUBREAPER = 36;
export const WNOHANG = 1;
const O_CLOEXEC = 0o2000000;
export const O_NONBLOCK = 0o4000;
const F_GETFL = 3;
const F_SETFL = 4;
const F_DUPFD_CLOEXEC = 1030;
const TIOCSWINSZ = 0x5414;
export const TIOCGWINSZ = 0x5413;
const FIONREAD = 0x541b;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_DONTWAIT = 0x40;
const MSG_CMSG_CLOEXEC = 0x40000000;
const MSG_CTRUNC = 0x8;

export function prctl(option: number, arg: number): void {
  check(lib().prctl(option, arg), "prctl", String(option));
}

/**
 * waitpid(pid, WNOHANG). Returns undefined if the child has not changed state, else the decoded status:
 * the exit code, or 128+signal if it was killed. Stopped/continued states are reported as undefined.
 */
export function waitpidNoHang(pid: number): number | undefined {
  const status = new Int32Array(1);
  const r = check(lib().waitpid(pid, status, WNOHANG), "waitpid", String(pid));
  if (r === 0) return undefined;
  const s = status[0] ?? 0;
  const termsig = s & 0x7f;
  if (termsig === 0) return (s >> 8) & 0xff; // WIFEXITED -> WEXITSTATUS
  if (termsig !== 0x7f) return 128 + termsig; // WIFSIGNALED -> 128 + WTERMSIG
  return undefined; // stopped
}

export function pipe2Cloexec(): [number, number] {
  const fds = new Int32Array(2);
  check(lib().pipe2(fds, O_CLOEXEC), "pipe2");
  return [fds[0] ?? -1, fds[1] ?? -1];
}

export function getFl(fd: number): number {
  return check(lib().fcntl(fd, F_GETFL), "fcntl F_GETFL", `on fd ${fd}`);
}

export function setFl(fd: number, flags: number): void {
  check(lib().fcntl(fd, F_SETFL, flags), "fcntl F_SETFL", `on fd ${fd}`);
}

export function closeFd(fd: number): void {
  check(lib().close(fd), "close", `fd ${fd}`);
}

/** ioctl(fd, TIOCSWINSZ or TIOCGWINSZ) with a struct winsize of four u16 (rows, cols, xpixel, ypixel). */
export function winsize(fd: number, req: number, ws?: { rows: number; cols: number }): { rows: number; cols: number } {
  const buf = new Uint16Array([ws?.rows ?? 0, ws?.cols ?? 0, 0, 0]);
  const name = req === TIOCSWINSZ ? "ioctl TIOCSWINSZ" : "ioctl TIOCGWINSZ";
  check(lib().ioctl(fd, req, buf), name, `on fd ${fd}`);
  return { rows: buf[0] ?? 0, cols: buf[1] ?? 0 };
}
export { TIOCSWINSZ };

/** ioctl(fd, FIONREAD): bytes that can be read from a pipe, FIFO or socket without blocking. */
export function fionread(fd: number): number {
  const buf = new Int32Array(1);
  check(lib().ioctl(fd, FIONREAD, buf), "ioctl FIONREAD", `on fd ${fd}`);
  return buf[0] ?? 0;
}

/**
 * One non-blocking recvmsg() with room for one SCM_RIGHTS fd (CMSG_SPACE(4)) and 4 KiB of data, which is
 * discarded. Returns the received fd (close-on-exec), or undefined on EAGAIN. Throws if the peer closed
 * without sending, or if the message carries no fd or anything other than exactly one fd.
 */
export function recvmsgOneFd(sockFd: number): number | undefined {
  const { recvmsg } = lib();
  // Layout (x86_64/arm64): msghdr 56 bytes | iovec 16 | control 24 (CMSG_SPACE(4)) | data 4096.
  const MSG = 0, IOV = 56, CTL = 72, CTL_LEN = 24, DATA = 96, DATA_LEN = 4096, TOTAL = DATA + DATA_LEN;
  const block = lib().alloc(TOTAL);
  try {
    const base = block.address;
    const v = block.view;
    new Uint8Array(v.buffer, v.byteOffset, DATA).fill(0);
    v.setBigUint64(MSG + 16, base + BigInt(IOV), true); // msg_iov
    v.setBigUint64(MSG + 24, 1n, true); // msg_iovlen
    v.setBigUint64(MSG + 32, base + BigInt(CTL), true); // msg_control
    v.setBigUint64(MSG + 40, BigInt(CTL_LEN), true); // msg_controllen
    v.setBigUint64(IOV, base + BigInt(DATA), true); // iov_base
    v.setBigUint64(IOV + 8, BigInt(DATA_LEN), true); // iov_len
    const n = Number(recvmsg(sockFd, block, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
    if (n < 0) {
      const errno = lastErrno();
      if (errno === E.EAGAIN) return undefined;
      throw new SysError("recvmsg", errno, `on fd ${sockFd}`);
    }
    const controllen = Number(v.getBigUint64(MSG + 40, true));
    const flags = v.getInt32(MSG + 48, true);
    // cmsghdr: cmsg_len u64 | cmsg_level i32 | cmsg_type i32 | data
    if (controllen >= 20) {
      const len = Number(v.getBigUint64(CTL, true));
      const level = v.getInt32(CTL + 8, true);
      const type = v.getInt32(CTL + 12, true);
      if (level === SOL_SOCKET && type === SCM_RIGHTS && len === 20 && (flags & MSG_CTRUNC) === 0) {
        return v.getInt32(CTL + 16, true);
      }
      if (level === SOL_SOCKET && type === SCM_RIGHTS) {
        // Close whatever did arrive so nothing leaks, then refuse the message.
        for (let off = CTL + 16; off + 4 <= CTL + Math.min(len, CTL_LEN); off += 4) lib().close(v.getInt32(off, true));
      }
      throw new ShimError("InvalidArgument", `Cannot receive fd on fd ${sockFd}: expected exactly one SCM_RIGHTS fd`);
    }
    if (n === 0) throw new ShimError("Unavailable", `Cannot receive fd on fd ${sockFd}: peer closed the connection`);
    throw new ShimError("InvalidArgument", `Cannot receive fd on fd ${sockFd}: message carried no fd`);
  } finally {
    block.free();
  }
}

/**
 * Resolves once `fd` is readable (or hung up), without reading from it. Watches a close-on-exec dup of
 * `fd`, so the watch never collides with a libuv handle that owns `fd` itself. Rejects when `signal`
 * aborts.
 */
export function waitReadable(fd: number, signal?: AbortSignal): Promise<void> {
  return waitReady(fd, "readable", signal);
}

/** Like {@link waitReadable}, for room to write (or a hang-up). The dup is closed once it settles. */
export function waitWritable(fd: number, signal?: AbortSignal): Promise<void> {
  return waitReady(fd, "writable", signal);
}

function waitReady(fd: number, what: "readable" | "writable", signal?: AbortSignal): Promise<void> {
  const { fcntl, close } = lib();
  signal?.throwIfAborted();
  const dup = check(fcntl(fd, F_DUPFD_CLOEXEC, 0), "fcntl F_DUPFD_CLOEXEC", `on fd ${fd}`);
  return new Promise<void>((resolve, reject) => {
    let watch: Watch | undefined;
    let done = false;
    const finish = (err?: unknown) => {
      if (done) return;
      done = true;
      signal?.removeEventListener("abort", onAbort);
      watch?.close();
      close(dup);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onAbort = () => finish(signal?.reason);
    try {
      watch = what === "readable" ? lib().watchReadable(dup, () => finish()) : lib().watchWritable(dup, () => finish());
    } catch (err) {
      finish(err);
      return;
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export function mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void {
  check(lib().mount(source, target, fstype, flags, data), "mount", `"${target}"`);
}

/** umount2(); returns the errno on failure instead of throwing (callers branch on EBUSY/EINVAL/ENOENT). */
export function umount2(target: string, flags: number): number {
  const r = Number(lib().umount2(target, flags));
  return r < 0 ? lastErrno() : 0;
}
