/**
 * Operating-system primitives for the shim (the only folder with native code, through koffi):
 * child reaping, real pipes, fd passing, pty resize and mounts.
 */
export { pipe2, setNonblocking, recvFd, recvFdAsync, setWinsize, getWinsize } from "./fds.js";
