/**
 * The OCI runtime spec of a pod's sandbox process (protocol.md §6.5): `catatonit -P` in the pod's
 * namespaces, built from the CRI `PodSandboxConfig`. Pure: values in, a plain JSON-able object out.
 */
import { invalidArgument, unimplemented } from "../errdefs.js";
import type { runtime } from "../gen/crisandbox.js";

type PodSandboxConfig = runtime.v1.PodSandboxConfig.$Properties;

/** CRI NamespaceMode numbers (k8s cri-api `NamespaceMode`). */
export const NamespaceMode = { POD: 0, CONTAINER: 1, NODE: 2, TARGET: 3 } as const;

/** Where the pause binary sits inside the sandbox rootfs, and how it is run (pause mode, no child). */
export const PAUSE_PATH = "/catatonit";
export const PAUSE_ARGS: readonly string[] = [PAUSE_PATH, "-P"];

/** containerd's default capability set (oci.WithDefaultSpec), for an unprivileged sandbox. */
export const DEFAULT_CAPS: readonly string[] = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
  "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

/** Every capability by number (linux/capability.h); a privileged sandbox gets those the shim itself has. */
export const ALL_CAPS: readonly string[] = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
  "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
  "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
  "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
  "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
  "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND",
  "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
];

/** CRI gives sandbox (pause) containers this many CPU shares (containerd's defaultSandboxCPUshares). */
export const SANDBOX_CPU_SHARES = 2;

const MASKED_PATHS = [
  "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
  "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
];
const READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/** What the sandbox spec is built from besides the pod config. */
export interface SandboxSpecInput {
  id: string;
  /** Decoded `CreateSandboxRequest.options` (may be empty: then a private network, IPC, UTS and PID ns). */
  config: PodSandboxConfig;
  /** `CreateSandboxRequest.netns_path`: the network namespace CRI made (with CNI) for the pod, or "". */
  netnsPath: string;
  /** Cgroup parent when the pod config names none (cgroupfs driver), e.g. `/<namespace>`. */
  defaultCgroupParent: string;
  /**
   * The shim's own effective capabilities (see {@link capsFromMask}), given to a privileged sandbox: runc
   * cannot grant more (containerd's WithAllCurrentCapabilities). Default: all of {@link ALL_CAPS}.
   */
  currentCaps?: readonly string[];
}

/** The capability names set in a `CapEff`-style hex mask (as in `/proc/self/status`). */
export function capsFromMask(hex: string): string[] {
  const mask = BigInt(`0x${hex.trim() || "0"}`);
  return ALL_CAPS.filter((_, bit) => ((mask >> BigInt(bit)) & 1n) === 1n);
}

/** The namespace choices of a pod, as the sandbox spec applies them. */
export interface PodNamespaces {
  hostNetwork: boolean;
  hostIpc: boolean;
  hostPid: boolean;
}

/** Reads the namespace modes of `config` (absent options mean POD everywhere). */
export function podNamespaces(config: PodSandboxConfig): PodNamespaces {
  const o = config.linux?.securityContext?.namespaceOptions;
  return {
    hostNetwork: o?.network === NamespaceMode.NODE,
    hostIpc: o?.ipc === NamespaceMode.NODE,
    hostPid: o?.pid === NamespaceMode.NODE,
  };
}

/** The spec's `linux.cgroupsPath`: `<cgroup_parent>/<id>` (cgroupfs); systemd slices are refused. */
export function cgroupsPath(id: string, parent: string | null | undefined, fallback: string): string {
  const p = parent ?? "";
  if (p.endsWith(".slice")) {
    throw invalidArgument(`Cannot use cgroup parent "${p}": the systemd cgroup driver is not supported for sandboxes`);
  }
  const base = p === "" ? fallback : p;
  return `${base.replace(/\/+$/, "")}/${id}`;
}

function namespaces(config: PodSandboxConfig, netnsPath: string): { type: string; path?: string }[] {
  const ns = podNamespaces(config);
  const out: { type: string; path?: string }[] = [{ type: "mount" }];
  if (netnsPath !== "") out.push({ type: "network", path: netnsPath });
  else if (!ns.hostNetwork) out.push({ type: "network" });
  if (!ns.hostIpc) out.push({ type: "ipc" });
  // A host-network pod keeps the host's UTS namespace and sets no hostname (protocol.md §11 item 11).
  if (!ns.hostNetwork) out.push({ type: "uts" });
  // POD: catatonit is the pod's init; CONTAINER/TARGET: a private one for the sandbox alone; NODE: none.
  if (!ns.hostPid) out.push({ type: "pid" });
  return out;
}

function mounts(hostIpc: boolean): object[] {
  const m: object[] = [
    { destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
  ];
  if (!hostIpc) m.push({ destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] });
  return m;
}

function user(config: PodSandboxConfig): { uid: number; gid: number; additionalGids?: number[] } {
  const sc = config.linux?.securityContext;
  const uid = Number(sc?.runAsUser?.value ?? 0);
  const gid = Number(sc?.runAsGroup?.value ?? 0);
  if (!Number.isSafeInteger(uid) || uid < 0 || !Number.isSafeInteger(gid) || gid < 0) {
    throw invalidArgument(`Cannot run the sandbox as uid ${uid} gid ${gid}: not a valid id`);
  }
  const groups = (sc?.supplementalGroups ?? []).map(Number);
  return { uid, gid, ...(groups.length > 0 ? { additionalGids: groups } : {}) };
}

/**
 * Builds the sandbox's OCI spec (root `rootfs`, relative to the bundle). Throws InvalidArgument for
 * settings that cannot work (systemd slices, bad ids) and Unimplemented for pod user namespaces.
 */
export function buildSandboxSpec(input: SandboxSpecInput): Record<string, unknown> {
  const { config, id } = input;
  const linux = config.linux ?? {};
  const sc = linux.securityContext ?? {};
  const userns = sc.namespaceOptions?.usernsOptions;
  if (userns && userns.mode === NamespaceMode.POD) {
    throw unimplemented(`Cannot create sandbox "${id}": pod user namespaces are not supported`);
  }
  const ns = podNamespaces(config);
  const privileged = sc.privileged === true;
  const caps = privileged ? [...(input.currentCaps ?? ALL_CAPS)] : [...DEFAULT_CAPS];
  const spec: Record<string, unknown> = {
    ociVersion: "1.0.2-dev",
    process: {
      terminal: false,
      user: user(config),
      args: [...PAUSE_ARGS],
      env: ["PATH=/"],
      cwd: "/",
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: !privileged,
    },
    root: { path: "rootfs", readonly: sc.readonlyRootfs === true },
    ...(ns.hostNetwork ? {} : { hostname: config.hostname ?? "" }),
    mounts: mounts(ns.hostIpc),
    annotations: {
      "io.kubernetes.cri.container-type": "sandbox",
      "io.kubernetes.cri.sandbox-id": id,
    },
    linux: {
      cgroupsPath: cgroupsPath(id, linux.cgroupParent, input.defaultCgroupParent),
      resources: {
        devices: [{ allow: privileged, access: "rwm" }],
        cpu: { shares: SANDBOX_CPU_SHARES },
      },
      namespaces: namespaces(config, input.netnsPath),
      ...(Object.keys(linux.sysctls ?? {}).length > 0 ? { sysctl: { ...linux.sysctls } } : {}),
      ...(privileged ? {} : { maskedPaths: MASKED_PATHS, readonlyPaths: READONLY_PATHS }),
    },
  };
  return spec;
}
