/**
 * mount(2)/umount2(2) for the task's rootfs: fstab-style option parsing, containerd Mount application and
 * recursive unmount. All calls are synchronous (they are quick syscalls, except on a hung network fs).
 */
import { closeSync, constants as fsConstants, existsSync, mkdirSync, openSync, readFileSync, realpathSync } from "node:fs";
import { posix as path } from "node:path";
import { ShimError } from "../errdefs.js";
import * as libc from "./libc.js";

/** MS_* flags of mount(2). */
export const MS = {
  RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, SYNCHRONOUS: 0x10, REMOUNT: 0x20, MANDLOCK: 0x40,
  DIRSYNC: 0x80, NOATIME: 0x400, NODIRATIME: 0x800, BIND: 0x1000, MOVE: 0x2000, REC: 0x4000,
  UNBINDABLE: 1 << 17, PRIVATE: 1 << 18, SLAVE: 1 << 19, SHARED: 1 << 20, RELATIME: 1 << 21,
  STRICTATIME: 1 << 24, LAZYTIME: 1 << 25,
} as const;

/** umount2() flag: lazy detach. */
export const MNT_DETACH = 0x2;

/** Option -> [clear?, flag]. `clear` options remove the flag (e.g. "rw" clears MS_RDONLY). */
const FLAG_OPTIONS: Record<string, [boolean, number]> = {
  defaults: [false, 0], ro: [false, MS.RDONLY], rw: [true, MS.RDONLY],
  suid: [true, MS.NOSUID], nosuid: [false, MS.NOSUID], dev: [true, MS.NODEV], nodev: [false, MS.NODEV],
  exec: [true, MS.NOEXEC], noexec: [false, MS.NOEXEC], sync: [false, MS.SYNCHRONOUS], async: [true, MS.SYNCHRONOUS],
  dirsync: [false, MS.DIRSYNC], remount: [false, MS.REMOUNT], mand: [false, MS.MANDLOCK], nomand: [true, MS.MANDLOCK],
  atime: [true, MS.NOATIME], noatime: [false, MS.NOATIME], diratime: [true, MS.NODIRATIME],
  nodiratime: [false, MS.NODIRATIME], bind: [false, MS.BIND], rbind: [false, MS.BIND | MS.REC],
  relatime: [false, MS.RELATIME], norelatime: [true, MS.RELATIME], strictatime: [false, MS.STRICTATIME],
  nostrictatime: [true, MS.STRICTATIME], lazytime: [false, MS.LAZYTIME], nolazytime: [true, MS.LAZYTIME],
};

const PROPAGATION_OPTIONS: Record<string, number> = {
  private: MS.PRIVATE, rprivate: MS.PRIVATE | MS.REC, shared: MS.SHARED, rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE, rslave: MS.SLAVE | MS.REC, unbindable: MS.UNBINDABLE, runbindable: MS.UNBINDABLE | MS.REC,
};

/**
 * Splits fstab-style options into MS_* `flags`, propagation changes (each applied by its own mount(2)
 * call after the mount, in order) and the remaining filesystem `data` joined with ",".
 */
export function parseMountOptions(options: string[]): { flags: number; data: string; propagation: number[] } {
  let flags = 0;
  const propagation: number[] = [];
  const data: string[] = [];
  for (const o of options) {
    const f = FLAG_OPTIONS[o];
    const p = PROPAGATION_OPTIONS[o];
    if (f) flags = f[0] ? flags & ~f[1] : flags | f[1];
    else if (p !== undefined) propagation.push(p);
    else if (o !== "") data.push(o);
  }
  return { flags, data: data.join(","), propagation };
}

/**
 * mount(2). For a read-only bind mount (MS_BIND|MS_RDONLY), the kernel ignores MS_RDONLY on the first
 * call, so this follows with a remount MS_BIND|MS_REMOUNT|MS_RDONLY (plus the per-mount flags asked for).
 * Throws `ShimError` ("Cannot mount "/target": EPERM").
 */
export function mount(source: string, target: string, fstype: string, flags: number, data: string): void {
  libc.mount(source, target, fstype, flags, data === "" ? null : data);
  if ((flags & MS.BIND) !== 0 && (flags & MS.RDONLY) !== 0 && (flags & MS.REMOUNT) === 0) {
    libc.mount(null, target, null, (flags & ~MS.REC) | MS.REMOUNT, null);
  }
}

/** Mount points at or under `target` from /proc/self/mountinfo, deepest first (stacked: newest first). */
function mountsUnder(target: string): string[] {
  const found: string[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const field = line.split(" ")[4];
    if (field === undefined) continue;
    const mp = field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
    if (mp === target || mp.startsWith(target === "/" ? "/" : target + "/")) found.push(mp);
  }
  return found.map((mp, i) => ({ mp, i })).sort((a, b) => b.mp.split("/").length - a.mp.split("/").length || b.i - a.i).map((x) => x.mp);
}

/**
 * Unmounts every mount at or under `target`, deepest first, until none is left. A busy mount is lazily
 * detached (MNT_DETACH). EINVAL (not a mount point) and ENOENT are not errors; a missing `target` is a
 * no-op. Throws `ShimError` if a mount survives.
 */
export function unmountRecursive(target: string): void {
  let dir = path.resolve(target);
  try {
    dir = realpathSync(dir);
  } catch {
    if (!existsSync(dir)) return;
  }
  for (let round = 0; round < 32; round++) {
    const mps = mountsUnder(dir);
    if (mps.length === 0) return;
    for (const mp of mps) {
      let errno = libc.umount2(mp, 0);
      if (errno === libc.E.EBUSY) errno = libc.umount2(mp, MNT_DETACH);
      if (errno !== 0 && errno !== libc.E.EINVAL && errno !== libc.E.ENOENT) {
        throw new libc.SysError("umount2", errno, `"${mp}"`);
      }
    }
  }
  const left = mountsUnder(dir);
  if (left.length > 0) throw new ShimError("Unavailable", `Cannot unmount "${left[0]}": still mounted`);
}

/** A containerd Mount (`containerd.types.Mount`): `target` is relative to the rootfs ("" = the rootfs). */
export interface MountSpec {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

/** The longest option string containerd hands to mount(2) as-is: a page minus 512 bytes. */
const MAX_DATA = 4096 - 512;
const O_PATH = 0o10000000;

/**
 * Resolves a Mount's target under `rootfs`, refusing any that leaves it (lexically, or through a symlink
 * in an existing component), and creates the target directory if it is missing.
 */
function targetIn(rootfs: string, target: string | undefined): string {
  const rel = path.normalize((target ?? "").replace(/^\/+/, "") || ".");
  const escapes = () => new ShimError("InvalidArgument", `Cannot mount at "${target}": target escapes the rootfs`);
  if (rel === ".." || rel.startsWith("../")) throw escapes();
  const full = path.resolve(rootfs, rel);
  const root = realpathSync(rootfs);
  let existing = full;
  while (!existsSync(existing)) existing = path.dirname(existing);
  const real = realpathSync(existing);
  if (real !== root && !real.startsWith(root === "/" ? "/" : root + "/")) throw escapes();
  if (existing !== full) mkdirSync(path.join(real, path.relative(existing, full)), { recursive: true, mode: 0o755 });
  return full;
}

/**
 * Shortens an overlay option string that exceeds a page minus 512 bytes. containerd chdir()s to the
 * lowerdirs' common parent and passes relative paths; Node cannot chdir one thread safely, so instead the
 * common parent is opened O_PATH and each lowerdir becomes `/proc/self/fd/<fd>/<relative>` (resolved by the
 * kernel in this process at mount time). Returns the data to use and the fd to close afterwards. Throws
 * `ShimError` "InvalidArgument" if the options are still too long.
 */
function compactOverlay(data: string): { data: string; fd?: number } {
  if (data.length <= MAX_DATA) return { data };
  const opts = data.split(",");
  const i = opts.findIndex((o) => o.startsWith("lowerdir="));
  const lowers = i < 0 ? [] : (opts[i] ?? "").slice("lowerdir=".length).split(":");
  let common = lowers.length > 0 ? path.dirname(lowers[0] ?? "/") : "/";
  for (const l of lowers) while (common !== "/" && !l.startsWith(common + "/")) common = path.dirname(common);
  if (common !== "/") {
    const fd = openSync(common, O_PATH | fsConstants.O_DIRECTORY);
    const prefix = `/proc/self/fd/${fd}/`;
    opts[i] = "lowerdir=" + lowers.map((l) => prefix + l.slice(common.length + 1)).join(":");
    const short = opts.join(",");
    if (short.length <= MAX_DATA) return { data: short, fd };
    closeSync(fd);
  }
  throw new ShimError("InvalidArgument", `Cannot mount overlay: options are ${data.length} bytes, too long even with lowerdirs shortened`);
}

/** Mounts one containerd Mount at `target` (an absolute path). */
function mountOne(m: MountSpec, target: string): void {
  const { flags: parsed, data: rawData, propagation } = parseMountOptions(m.options);
  if (m.options.includes("loop")) throw new ShimError("Unimplemented", `Cannot mount "${m.source}": loop mounts are not supported`);
  let flags = parsed;
  if ((m.type === "bind" || m.type === "rbind") && (flags & MS.BIND) === 0) flags |= MS.BIND | (m.type === "rbind" ? MS.REC : 0);
  let data = rawData;
  let fd: number | undefined;
  if (m.type === "overlay") ({ data, fd } = compactOverlay(rawData));
  try {
    mount(m.source, target, m.type, flags & ~(MS.PRIVATE | MS.SHARED | MS.SLAVE | MS.UNBINDABLE), data);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  for (const p of propagation) libc.mount(null, target, null, p, null);
}

/**
 * Applies containerd Mounts onto `rootfs` in order (as for `CreateTaskRequest.rootfs`). Types: bind and
 * rbind (options "bind"/"rbind" implied when missing), overlay (long lowerdir lists shortened, see
 * above), and anything else handed to mount(2) as is. A target must stay inside `rootfs`; a missing
 * target directory is created (0755). If one mount
 * fails, those already made are unmounted again (newest first) and the error is thrown.
 */
export function mountAll(mounts: MountSpec[], rootfs: string): void {
  const root = path.resolve(rootfs);
  const done: string[] = [];
  try {
    for (const m of mounts) {
      const target = targetIn(root, m.target);
      mountOne(m, target);
      done.push(target);
    }
  } catch (err) {
    for (const t of done.reverse()) {
      try {
        unmountRecursive(t);
      } catch {
        // best effort: the original error matters more
      }
    }
    throw err;
  }
}
