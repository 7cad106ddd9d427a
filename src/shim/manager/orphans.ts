/**
 * The `delete` of a pod sandbox whose daemon is gone also cleans up the pod's other containers. containerd
 * 2.x creates a pod's app containers on the sandbox's shim without a `start` (version 3, protocol.md §6.4),
 * so it never runs `delete` for them: after a kill -9 of the daemon their runc containers, processes and
 * cgroups stayed behind for good (also with containerd-shim-runc-v2). Found by test/e2e/faults-cri.test.ts.
 * Only containers whose `io.kubernetes.cri.sandbox-id` annotation names the sandbox are touched, and only when
 * no daemon answers on the sandbox's socket: a pod's containers all run on that daemon.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";

const SANDBOX_ID = "io.kubernetes.cri.sandbox-id";
/** Each runc call is bounded; containerd gives the whole `delete` 5 s. */
const CALL_TIMEOUT_MS = 2500;

/** One entry of `runc list --format json`. */
export interface ListedContainer {
  id: string;
  bundle?: string;
  annotations?: Record<string, string>;
}

/** How to run the runtime for the orphans (the sandbox's saved options; a pod has one runtime handler). */
export interface OrphanRuntime {
  binary: string;
  /** `<root>/<namespace>` */
  root: string;
  systemdCgroup?: boolean;
}

/** The containers of `list` that belong to sandbox `sandboxId`, other than the sandbox itself. */
export function podOrphans(list: ListedContainer[], sandboxId: string, readConfig = configAnnotations): ListedContainer[] {
  return list.filter((c) => {
    if (c.id === sandboxId) return false;
    const annotations = c.annotations ?? (c.bundle ? readConfig(c.bundle) : undefined);
    return annotations?.[SANDBOX_ID] === sandboxId;
  });
}

/** Annotations of `<bundle>/config.json` (for runtimes whose `list` does not show them); undefined if unreadable. */
function configAnnotations(bundle: string): Record<string, string> | undefined {
  try {
    return (JSON.parse(readFileSync(path.join(bundle, "config.json"), "utf8")) as { annotations?: Record<string, string> }).annotations;
  } catch {
    return undefined;
  }
}

function run(binary: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = { ...process.env };
  delete env["NOTIFY_SOCKET"];
  return new Promise((resolve) => {
    const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"], env, timeout: CALL_TIMEOUT_MS, killSignal: "SIGKILL" });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => {
      if (stderr.length < 4096) stderr += s;
    });
    child.once("error", (err) => resolve({ code: null, stdout, stderr: err.message }));
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Force-deletes the runtime's containers of sandbox `sandboxId` and unmounts their rootfs (`unmount`
 * is given the rootfs path; the caller's unmount only runs where a mount is left). Returns warnings.
 */
export async function deletePodOrphans(rt: OrphanRuntime, sandboxId: string, unmount: (rootfs: string) => Promise<string | undefined>): Promise<string[]> {
  const globals = ["--root", rt.root, ...(rt.systemdCgroup ? ["--systemd-cgroup"] : [])];
  const listed = await run(rt.binary, [...globals, "list", "--format", "json"]);
  if (listed.code !== 0) return [`Cannot list the pod's containers ("${rt.binary} list" failed: ${listed.stderr.trim()})`];
  let list: ListedContainer[];
  try {
    list = (JSON.parse(listed.stdout.trim() || "[]") as ListedContainer[] | null) ?? [];
  } catch {
    return [`Cannot parse "${rt.binary} list" output`];
  }
  const orphans = podOrphans(list, sandboxId);
  const warnings = await Promise.all(orphans.map(async (c) => {
    const r = await run(rt.binary, [...globals, "delete", "--force", c.id]);
    const out: string[] = [];
    if (r.code !== 0) out.push(`Cannot delete "${c.id}" of the dead pod: ${r.stderr.trim()}`);
    const w = c.bundle ? await unmount(path.join(c.bundle, "rootfs")) : undefined;
    if (w !== undefined) out.push(w);
    return out;
  }));
  return warnings.flat();
}
