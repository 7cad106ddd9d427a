/**
 * What the task service reads from and writes to a bundle: config.json facts, options.json/runtime
 * (read back by the `delete` action), and id validation.
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
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
  await writeFile(path.join(bundle, "options.json"), JSON.stringify(saved), { mode: 0o600 });
  await writeFile(path.join(bundle, "runtime"), opts.binaryName ?? "runc", { mode: 0o600 });
}
