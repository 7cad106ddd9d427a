// Folder src/sandbox:
// Owns: the containerd.runtime.sandbox.v1 Sandbox service: the pod's sandbox bundle, spec and rootfs, the pause
//   process run with runc, CRI pod files and config.
// Must not import: shim, stdio, task.

/**
 * The sandbox bundle the shim writes itself: containerd hands over a directory with no `config.json`
 * and no rootfs (protocol.md §2.2), so the shim adds a rootfs holding only the pause binary and the
 * spec built from the pod config, and removes both again at shutdown.
 */
import { chmod, copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { failedPrecondition } from "../errdefs.js";
import { PAUSE_PATH } from "./spec.js";

/** Files of the sandbox bundle, by role. */
export interface SandboxFiles {
  bundle: string;
  rootfs: string;
  config: string;
  /** runc `--pid-file` of the pause process. */
  pidFile: string;
  /** runc `--log` for every call on the sandbox. */
  logFile: string;
}

/** The paths the shim uses inside `bundle`. */
export function sandboxFiles(bundle: string): SandboxFiles {
  return {
    bundle,
    rootfs: path.join(bundle, "rootfs"),
    config: path.join(bundle, "config.json"),
    pidFile: path.join(bundle, "init.pid"),
    logFile: path.join(bundle, "log.json"),
  };
}

/**
 * Writes `rootfs/` (the pause binary, copied from `pauseBinary`, plus empty mount points) and
 * `config.json`. Fails with FailedPrecondition when the pause binary cannot be copied.
 */
export async function writeSandboxBundle(files: SandboxFiles, spec: object, pauseBinary: string): Promise<void> {
  await mkdir(files.rootfs, { recursive: true, mode: 0o755 });
  await chmod(files.rootfs, 0o755);
  for (const d of ["proc", "dev"]) await mkdir(path.join(files.rootfs, d), { recursive: true, mode: 0o755 });
  const target = path.join(files.rootfs, PAUSE_PATH);
  try {
    await copyFile(pauseBinary, target);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw failedPrecondition(`Cannot copy the pause binary "${pauseBinary}" into the sandbox rootfs: ${code}`, { cause: err });
  }
  await chmod(target, 0o755);
  await writeFile(files.config, JSON.stringify(spec), { mode: 0o600 });
}

/** Removes what {@link writeSandboxBundle} and runc wrote; the bundle directory itself is containerd's. */
export async function removeSandboxBundle(files: SandboxFiles): Promise<void> {
  for (const p of [files.rootfs, files.config, files.pidFile, files.logFile]) {
    await rm(p, { recursive: true, force: true });
  }
}
