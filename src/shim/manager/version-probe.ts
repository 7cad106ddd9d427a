/**
 * Which task API version `start` answers (protocol.md §1.5, §6.4; measured in docs/grouping.md).
 *
 * Version 3 tells containerd 2.x that this shim hosts a sandbox's containers without a `start` (and a
 * `delete`) per container, which saves two Node processes per app container. containerd 1.6 understands
 * only a plain address and 1.7 rejects version 3, and nothing at `start` tells 1.7 from 2.0-2.2, so `start`
 * asks `-publish-binary --version` (about 20 ms, run while the daemon spawns). Anything it cannot read
 * counts as 1.x: the plain address works on every version.
 */
import { execFile } from "node:child_process";

/** Set to "2" to always answer version 2 (a plain address), e.g. to compare or to rule v3 out. */
export const MAX_VERSION_ENV = "SHIM_TS_MAX_VERSION";

const PROBE_TIMEOUT_MS = 1000;

/** containerd's major version from its `--version` line ("containerd <module> 2.1.9 <commit>"). */
export function parseContainerdMajor(text: string): number | undefined {
  const m = /\s(?:v)?(\d+)\.(\d+)\.\d+/.exec(` ${text}`);
  return m === null ? undefined : Number(m[1]);
}

/** Resolves the task API version to answer for containerd at `binary`: 3 for 2.x, else 2. Never rejects. */
export function probeTaskVersion(binary: string, env: NodeJS.ProcessEnv): Promise<2 | 3> {
  if (env[MAX_VERSION_ENV] === "2" || binary === "") return Promise.resolve(2);
  return new Promise((resolve) => {
    execFile(binary, ["--version"], { timeout: PROBE_TIMEOUT_MS, env: {} }, (err, stdout) => {
      if (err !== null) return resolve(2);
      const major = parseContainerdMajor(stdout);
      resolve(major !== undefined && major >= 2 ? 3 : 2);
    });
  });
}

/** The JSON answer for version 3 (containerd 2.0-2.2 parse it; 2.3+ get a BootstrapResult instead). */
export function jsonAnswer(version: 2 | 3, address: string): string {
  return JSON.stringify({ version, address, protocol: "ttrpc" });
}
