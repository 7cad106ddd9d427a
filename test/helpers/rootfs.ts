/**
 * OCI bundles for tests: a busybox rootfs made from the host's static busybox (Debian
 * `busybox-static`) and a runc 1.1 compatible `config.json`. Missing prerequisites fail loudly.
 */
import { accessSync, constants, existsSync } from "node:fs";
import { copyFile, mkdir, symlink, writeFile } from "node:fs/promises";
import { delimiter, join } from "node:path";

/** Where the static busybox comes from. */
export const BUSYBOX = "/bin/busybox";

/** Applets linked in every rootfs. */
export const APPLETS = [
  "sh", "echo", "sleep", "cat", "true", "false", "ls", "ps", "id", "hostname", "env", "kill", "head", "dd",
  "wc", "grep", "readlink",
] as const;

/** containerd's default capability set (oci.WithDefaultSpec). */
export const DEFAULT_CAPS = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
  "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Finds an executable on PATH (or an absolute path); undefined when absent. */
export function which(bin: string): string | undefined {
  const candidates = bin.includes("/") ? [bin] : (process.env.PATH ?? "").split(delimiter).map((d) => join(d, bin));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Throws a clear error unless running as root and every binary in `bins` exists (names are looked
 * up on PATH, paths are checked as given). Tests call this first so they fail, never skip silently.
 */
export function requireRoot(bins: readonly string[] = []): void {
  if (process.getuid?.() !== 0) {
    throw new Error(`This test needs root (uid 0), running as uid ${process.getuid?.() ?? "unknown"}`);
  }
  const missing = bins.filter((b) => which(b) === undefined);
  if (missing.length > 0) {
    throw new Error(`This test needs missing binaries: ${missing.join(", ")} (apt-get install -y runc busybox-static)`);
  }
}

/** Builds `<dir>` as a rootfs: busybox at /bin/busybox, applet symlinks, and the usual empty dirs. */
export async function makeRootfs(dir: string): Promise<void> {
  if (!existsSync(BUSYBOX)) {
    throw new Error(`Cannot build a test rootfs: "${BUSYBOX}" is missing (apt-get install -y busybox-static)`);
  }
  for (const d of ["bin", "proc", "sys", "dev", "tmp", "etc", "root", "run", "var"]) {
    await mkdir(join(dir, d), { recursive: true });
  }
  await copyFile(BUSYBOX, join(dir, "bin", "busybox"));
  for (const a of APPLETS) await symlink("busybox", join(dir, "bin", a));
  await writeFile(join(dir, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n");
  await writeFile(join(dir, "etc", "group"), "root:x:0:\nnobody:x:65534:\n");
}

/** What varies between test bundles. */
export interface BundleOptions {
  args: string[];
  terminal?: boolean;
  /** Extra `KEY=value` entries after PATH. */
  env?: string[];
  cwd?: string;
  hostname?: string;
  annotations?: Record<string, string>;
  cgroupsPath?: string;
  /** Leave out the network namespace (share the host's). */
  hostNetwork?: boolean;
  /** Last word on the spec, for tests that need something unusual. */
  patch?: (spec: Record<string, unknown>) => void;
}

/** The OCI runtime spec `makeBundle` writes, as a plain object. */
export function ociSpec(opts: BundleOptions): Record<string, unknown> {
  const caps = [...DEFAULT_CAPS];
  const namespaces = ["pid", "ipc", "uts", "mount", ...(opts.hostNetwork ? [] : ["network"])].map((type) => ({ type }));
  const spec: Record<string, unknown> = {
    ociVersion: "1.0.2-dev",
    process: {
      terminal: opts.terminal ?? false,
      user: { uid: 0, gid: 0 },
      args: opts.args,
      env: [DEFAULT_PATH, ...(opts.terminal ? ["TERM=xterm"] : []), ...(opts.env ?? [])],
      cwd: opts.cwd ?? "/",
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: false },
    hostname: opts.hostname ?? "test",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
      {
        destination: "/dev/pts",
        type: "devpts",
        source: "devpts",
        options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
      },
      { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
      { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    ],
    annotations: opts.annotations ?? {},
    linux: {
      ...(opts.cgroupsPath !== undefined ? { cgroupsPath: opts.cgroupsPath } : {}),
      resources: { devices: [{ allow: false, access: "rwm" }] },
      namespaces,
      maskedPaths: [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
      ],
      readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
  };
  opts.patch?.(spec);
  return spec;
}

/** Writes `<dir>/config.json` and a busybox `<dir>/rootfs`; returns `dir` (the bundle path). */
export async function makeBundle(dir: string, opts: BundleOptions): Promise<string> {
  await makeRootfs(join(dir, "rootfs"));
  await writeFile(join(dir, "config.json"), JSON.stringify(ociSpec(opts), null, 2));
  return dir;
}
