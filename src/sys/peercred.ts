/**
 * SO_PEERCRED: who is on the other end of a connected unix socket (socket(7)). The credentials are
 * those the peer had when it called connect(2), which is what containerd/ttrpc's
 * `UnixSocketRequireSameUser` checks on every accepted connection.
 */
import { ShimError } from "../errdefs.js";
import { natives } from "./ffi.js";
import { errnoName, lastErrno } from "./libc.js";

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
/** struct ucred { pid_t pid; uid_t uid; gid_t gid; } */
const UCRED_SIZE = 12;

/** A peer's process id and effective user and group ids, as of its connect(2). */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/**
 * The credentials of the peer of the connected unix socket `fd`. Throws ShimError naming the errno
 * (`Cannot getsockopt SO_PEERCRED on fd 12: ENOTSOCK`) if the kernel does not give them.
 */
export function peerCredentials(fd: number): PeerCredentials {
  const val = new Uint8Array(UCRED_SIZE);
  const len = new Uint32Array([UCRED_SIZE]);
  const r = natives().getsockopt(fd, SOL_SOCKET, SO_PEERCRED, val, len);
  if (r < 0) {
    const errno = lastErrno();
    throw new ShimError("Internal", `Cannot getsockopt SO_PEERCRED on fd ${fd}: ${errnoName(errno)}`);
  }
  if (len[0] !== UCRED_SIZE) throw new ShimError("Internal", `Cannot getsockopt SO_PEERCRED on fd ${fd}: got ${len[0]} bytes`);
  const v = new DataView(val.buffer);
  return { pid: v.getInt32(0, true), uid: v.getUint32(4, true), gid: v.getUint32(8, true) };
}
