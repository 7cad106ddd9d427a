/**
 * Which task API version `start` answers (protocol.md §1.5, §6.4; measured in docs/grouping.md).
 *
 * Version 3 tells containerd 2.x that this shim hosts a sandbox's containers without a `start` (and a
 * `delete`) per container, which saves two Node processes per app container. containerd 1.6 understands
 * only a plain address and 1.7 rejects version 3, and nothing at `start` tells 1.7 from 2.0-2.2, so `start`
 * asks `-publish-binary --version`, run while the daemon spawns. Anything it cannot read counts as 1.x: the
 * plain address works on every version.
 *
 * The answer is kept in {@link VERSION_CACHE_DIR}, one file per binary path, with the binary's identity
 * (device, inode, size, mtime, ctime): a later `start` reads it instead of running containerd. The run cost
 * 77 ms of CPU (Go's start; 130 ms of wall in a `ctr run` traced on 2 loaded cores) in every pod's start,
 * alongside the daemon's boot. Replacing or upgrading containerd changes the identity, so the next `start`
 * asks again. The cache is best effort: any error reading or writing it means one more probe, never a failure.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";

/** Set to "2" to always answer version 2 (a plain address), e.g. to compare or to rule v3 out. */
export const MAX_VERSION_ENV = "SHIM_TS_MAX_VERSION";

const PROBE_TIMEOUT_MS = 1000;

/** containerd's major version from its `--version` line ("containerd <module> 2.1.9 <commit>"). */
export function parseContainerdMajor(text: string): number | undefined {
  const m = /\s(?:v)?(\d+)\.(\d+)\.\d+/.exec(` ${text}`);
  return m === null ? undefined : Number(m[1]);
}

/** Where probe answers are kept between starts (root's tmpfs, cleared at boot; beside the SEA's native dir). */
export const VERSION_CACHE_DIR = "/run/containerd-shim-ts/version";

/**
 * Resolves the task API version to answer for containerd at `binary`: 3 for 2.x, else 2. Never rejects.
 * A version read once is kept in `cacheDir` while the binary stays the same file (see above).
 */
export function probeTaskVersion(binary: string, env: NodeJS.ProcessEnv, cacheDir = VERSION_CACHE_DIR): Promise<2 | 3> {
  if (env[MAX_VERSION_ENV] === "2" || binary === "") return Promise.resolve(2);
  const id = identity(binary);
  const file = path.join(cacheDir, createHash("sha256").update(binary).digest("hex"));
  const cached = id === undefined ? undefined : readCached(file, id);
  if (cached !== undefined) return Promise.resolve(cached);
  return new Promise((resolve) => {
    execFile(binary, ["--version"], { timeout: PROBE_TIMEOUT_MS, env: {} }, (err, stdout) => {
      if (err !== null) return resolve(2);
      const major = parseContainerdMajor(stdout);
      const version = major !== undefined && major >= 2 ? 3 : 2;
      if (major !== undefined && id !== undefined) writeCached(cacheDir, file, id, version);
      resolve(version);
    });
  });
}

/** What changes when the file at `binary` is replaced or rewritten; undefined when it cannot be stat'ed. */
function identity(binary: string): string | undefined {
  try {
    const st = statSync(binary, { bigint: true });
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch {
    return undefined;
  }
}

/** The cached version for `id`, or undefined (no file, another identity, unreadable). */
function readCached(file: string, id: string): 2 | 3 | undefined {
  try {
    const [key, v] = readFileSync(file, "utf8").trim().split(" ");
    return key === id && (v === "2" || v === "3") ? (Number(v) as 2 | 3) : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the answer (a temp file renamed into place, so a reader never sees half of it). Errors are ignored. */
function writeCached(dir: string, file: string, id: string, version: 2 | 3): void {
  const tmp = `${file}.${process.pid}`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(tmp, `${id} ${version}\n`, { mode: 0o600 });
    renameSync(tmp, file);
  } catch {
    // best effort: the next start probes again
  }
}

/** The JSON answer for version 3 (containerd 2.0-2.2 parse it; 2.3+ get a BootstrapResult instead). */
export function jsonAnswer(version: 2 | 3, address: string): string {
  return JSON.stringify({ version, address, protocol: "ttrpc" });
}
