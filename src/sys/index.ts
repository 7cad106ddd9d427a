/**
 * Operating-system primitives for the shim (the only folder with native code, through koffi):
 * child reaping, real pipes, fd passing, pty resize, mounts and socket peer credentials.
 */
export { pipe2, setNonblocking, recvFd, recvFdAsync, setWinsize, getWinsize, unreadBytes, waitWritable } from "./fds.js";
export { Reaper, setChildSubreaper, SUBSCRIPTION_LIMIT } from "./reaper.js";
export type { Exit, ChildRegistry, ExitSubscription } from "./reaper.js";
export { mount, mountAll, unmountRecursive, parseMountOptions, MS, MNT_DETACH } from "./mount.js";
export type { MountSpec } from "./mount.js";
export { EventFd } from "./eventfd.js";
export { peerCredentials } from "./peercred.js";
export type { PeerCredentials } from "./peercred.js";
export { fdReader, fdWriter } from "./fdstream.js";
export { ptyReader } from "./ptyreader.js";
export { RUNTIME } from "./ffi.js";
