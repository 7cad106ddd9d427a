// Folder src/task:
// Owns: the containerd.task.v2 Task service: containers and exec processes, their state machine, IO, exit
//   routing, OOM, checkpoint/restore, events and state snapshots.
// Must not import: sandbox, shim.

/**
 * What the task service reads from and writes to a bundle: config.json facts, options.json/runtime
 * (read back by the `delete` action), and id validation.
 */
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { internal } from "../errdefs.js";
import type { RuntimeOptions } from "./options.js";

/** Validates a container or exec id as containerd does (src/ids.ts; also rules out path-like ids). */
export { validateId } from "../ids.js";

/** Facts from config.json that change how exits are handled. */
export interface SpecFacts {
  /** True if the container has no private PID namespace: leftovers must be killed on init exit. */
  sharedPidNs: boolean;
  /** io.kubernetes.cri.sandbox-id annotation, if any. */
  sandboxId: string | undefined;
}

/** Reads config.json of `bundle`. */
export async function readSpecFacts(bundle: string): Promise<SpecFacts> {
  const raw = await readFile(path.join(bundle, "config.json"), "utf8");
  const spec = JSON.parse(raw) as {
    linux?: { namespaces?: { type?: string; path?: string }[] };
    annotations?: Record<string, string>;
  };
  const ns = spec.linux?.namespaces ?? [];
  const privatePid = ns.some((n) => n.type === "pid" && (n.path === undefined || n.path === ""));
  return { sharedPidNs: !privatePid, sandboxId: spec.annotations?.["io.kubernetes.cri.sandbox-id"] };
}

/** Persists what `delete` needs to find the right runc binary and root after a shim dies. */
export async function writeRuntimeFiles(bundle: string, opts: RuntimeOptions): Promise<void> {
  const saved = { binaryName: opts.binaryName, root: opts.root, systemdCgroup: opts.systemdCgroup };
  await writeWhole(path.join(bundle, "options.json"), JSON.stringify(saved));
  await writeWhole(path.join(bundle, "runtime"), opts.binaryName ?? "runc");
}

/**
 * Writes `file` (0600) whole or not at all: a temp file renamed into place, removed on failure (a full
 * disk left an empty options.json, which `delete` would read as defaults). Errors name the file.
 */
async function writeWhole(file: string, data: string): Promise<void> {
  const tmp = `${file}.tmp`;
  try {
    await writeFile(tmp, data, { mode: 0o600 });
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    throw internal(`Cannot write "${file}": ${(err as Error).message}`, { cause: err });
  }
}
