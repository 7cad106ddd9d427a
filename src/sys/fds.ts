/**
 * File-descriptor helpers Node lacks: real pipes, O_NONBLOCK control, SCM_RIGHTS receive and pty resize.
 */
import { ShimError } from "../errdefs.js";
import * as libc from "./libc.js";

/**
 * Creates a real `pipe(2)` pair with O_CLOEXEC on both ends (Node's `'pipe'` stdio gives a socketpair,
 * and a container whose stdout is a socket cannot reopen `/dev/stdout`). Both ends are blocking; make our
 * side non-blocking with {@link setNonblocking} before wrapping it in a stream. Passing an end to
 * `child_process.spawn` as a stdio entry dup2()s it, which clears O_CLOEXEC in the child only.
 */
export function pipe2(): [readFd: number, writeFd: number] {
  return libc.pipe2Cloexec();
}

/** Sets or clears O_NONBLOCK on `fd` (the flag lives on the open file description, shared by dups). */
export function setNonblocking(fd: number, on: boolean): void {
  const fl = libc.getFl(fd);
  const next = on ? fl | libc.O_NONBLOCK : fl & ~libc.O_NONBLOCK;
  if (next !== fl) libc.setFl(fd, next);
}

/**
 * Receives one fd sent with SCM_RIGHTS on a connected unix stream socket, without blocking. The data bytes
 * of the message (runc sends the pty's name) are read and discarded. Throws `ShimError` "Unavailable" with
 * "EAGAIN" in the message if nothing has arrived yet (use {@link recvFdAsync} to wait), "Unavailable" if the
 * peer closed without sending, and "InvalidArgument" if the message does not carry exactly one fd. The
 * returned fd is close-on-exec and blocking (as the sender had it; runc's pty master is blocking).
 *
 * How to get `sockFd` in Node 20 (verified by test/sys/fds.test.ts): listen with
 * `net.createServer({ pauseOnConnect: true })`. On `connection`, the socket's handle has not started
 * reading, so libuv has not consumed the message (a plain `read()` would drop the ancillary fd, which
 * the kernel then closes). Take `(socket as unknown as { _handle: { fd: number } })._handle.fd`, call
 * `recvFdAsync(fd)`, then `socket.destroy()`. Never resume that socket before the fd has been received.
 */
export function recvFd(sockFd: number): number {
  const fd = libc.recvmsgOneFd(sockFd);
  if (fd === undefined) throw new ShimError("Unavailable", `Cannot recvmsg on fd ${sockFd}: EAGAIN`);
  return fd;
}

/**
 * Like {@link recvFd} but waits until the message arrives (peers send it right after connecting, so
 * the first attempt usually succeeds). Waiting uses koffi's libuv poll handle on the socket fd (the Node
 * socket must be paused, see {@link recvFd}). Rejects with the signal's reason when `signal` aborts.
 */
export async function recvFdAsync(sockFd: number, opts: { signal?: AbortSignal } = {}): Promise<number> {
  for (;;) {
    opts.signal?.throwIfAborted();
    const fd = libc.recvmsgOneFd(sockFd);
    if (fd !== undefined) return fd;
    await libc.waitReadable(sockFd, opts.signal);
  }
}

/** Sets a terminal's window size with TIOCSWINSZ (on the pty master; the slave sees SIGWINCH). */
export function setWinsize(fd: number, cols: number, rows: number): void {
  if (!Number.isInteger(cols) || !Number.isInteger(rows) || cols < 0 || rows < 0 || cols > 0xffff || rows > 0xffff) {
    throw new ShimError("InvalidArgument", `Cannot resize terminal to ${cols}x${rows}: out of range`);
  }
  libc.winsize(fd, libc.TIOCSWINSZ, { rows, cols });
}

/** Reads a terminal's window size with TIOCGWINSZ. */
export function getWinsize(fd: number): { cols: number; rows: number } {
  const { rows, cols } = libc.winsize(fd, libc.TIOCGWINSZ);
  return { cols, rows };
}

/**
 * Bytes written to the pipe or FIFO that `fd` reads from and not yet read by anyone (FIONREAD on any read
 * end sees the shared buffer): a writer holding a reader of its own can tell when its peer caught up.
 */
export function unreadBytes(fd: number): number {
  return libc.fionread(fd);
}

/**
 * Resolves once `fd` has room for a write (or hung up: the write then tells why), without a timer: for a
 * non-blocking writer that got EAGAIN. Watches a dup of `fd` (closed once this settles), so `fd` may also
 * be read through a libuv handle. Rejects with the signal's reason when `signal` aborts.
 */
export function waitWritable(fd: number, opts: { signal?: AbortSignal } = {}): Promise<void> {
  return libc.waitWritable(fd, opts.signal);
}
