// config.toml for a private test containerd: `version = 2` (1.6, 1.7) or `version = 3` (2.x).
import { createHash } from "node:crypto";
import path from "node:path";
import { PAUSE_REF } from "./image.js";

/** How our shim groups containers into daemons (SHIM_TS_GROUPING): one daemon per pod, or per namespace. */
export type Grouping = "pod" | "namespace";

export interface ConfigPaths {
  dir: string; root: string; state: string; address: string; ttrpcAddress: string;
  cri: boolean; runtime: string;
}

// Plugins a test daemon never needs: other snapshotters, tracing, NRI (its socket is machine-wide).
const COMMON_DISABLED = [
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing", "io.containerd.nri.v1.nri",
];
const CRI_V1 = ["io.containerd.grpc.v1.cri"];
const CRI_V2 = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images",
  "io.containerd.podsandbox.controller.v1.podsandbox"];

const q = (s: string): string => JSON.stringify(s);
const list = (xs: string[]): string => `[${xs.map(q).join(", ")}]`;

/** Renders the config for `version` (see file header). CRI, when enabled, defaults to `p.runtime`. */
export function configToml(version: "1.6" | "1.7" | "2.1", p: ConfigPaths): string {
  const v2 = version !== "2.1";
  const disabled = [...COMMON_DISABLED, ...(p.cri ? [] : v2 ? CRI_V1 : CRI_V2)];
  const head = `version = ${v2 ? 2 : 3}
root = ${q(p.root)}
state = ${q(p.state)}
disabled_plugins = ${list(disabled)}

[grpc]
  address = ${q(p.address)}
[ttrpc]
  address = ${q(p.ttrpcAddress)}
[debug]
  level = "debug"
[plugins."io.containerd.internal.v1.opt"]
  path = ${q(path.join(p.dir, "opt"))}
`;
  if (!p.cri) return head;
  return head + (v2 ? criV1(p) : criV2(p));
}

function runtimes(prefix: string, p: ConfigPaths): string {
  return `[${prefix}.containerd]
  default_runtime_name = "test"
[${prefix}.containerd.runtimes.test]
  runtime_type = ${q(p.runtime)}
[${prefix}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
`;
}

function criV1(p: ConfigPaths): string {
  const pre = `plugins."io.containerd.grpc.v1.cri"`;
  return `[${pre}]
  sandbox_image = ${q(PAUSE_REF)}
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[${pre}.containerd]
  snapshotter = "overlayfs"
${runtimes(pre, p).replace(`[${pre}.containerd]\n`, "")}[${pre}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = ${q(path.join(p.dir, "cni"))}
`;
}

function criV2(p: ConfigPaths): string {
  const rt = `plugins."io.containerd.cri.v1.runtime"`;
  return `[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = ${q(PAUSE_REF)}
[${rt}]
  restrict_oom_score_adj = true
  disable_apparmor = true
${runtimes(rt, p)}[${rt}.cni]
  bin_dirs = ["/usr/lib/cni"]
  conf_dir = ${q(path.join(p.dir, "cni"))}
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`;
}

/** A CRI runtime handler: `runtime_type`, optional absolute `runtime_path` and `options` table. */
export interface CriRuntime { type: string; path?: string; options?: Record<string, string | boolean> }

/**
 * TOML adding CRI runtime handler `name` to the config of `version` (append it as extraConfig; the
 * handlers `test` and `runc` already exist).
 */
export function criRuntimeToml(version: "1.6" | "1.7" | "2.1", name: string, rt: CriRuntime): string {
  const plugin = version === "2.1" ? `plugins."io.containerd.cri.v1.runtime"` : `plugins."io.containerd.grpc.v1.cri"`;
  const table = `[${plugin}.containerd.runtimes.${name}]`;
  let out = `${table}\n  runtime_type = ${q(rt.type)}\n`;
  if (rt.path !== undefined) out += `  runtime_path = ${q(rt.path)}\n`;
  if (rt.options !== undefined) {
    out += `${table.slice(0, -1)}.options]\n`;
    for (const [k, v] of Object.entries(rt.options)) out += `  ${k} = ${typeof v === "string" ? q(v) : String(v)}\n`;
  }
  return out;
}

/**
 * Socket path of the shim serving `id` (grouping id) for containerd `c` in `ns` (protocol §2.1). With namespace
 * grouping (docs/grouping.md) the group is empty: one socket for the whole namespace, whatever the id.
 */
export function shimSocketPath(c: { address: string; grouping: Grouping }, ns: string, id: string): string {
  const key = path.posix.join(c.address, ns, c.grouping === "namespace" ? "" : id);
  return `/run/containerd/s/${createHash("sha256").update(key).digest("hex")}`;
}
