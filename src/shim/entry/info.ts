// Folder src/shim/entry:
// Owns: the executable's entry: argv to action, -v, -info, -h, and the single executable's (SEA) entry.
// Must not import: cgroups, runc, stdio.

/**
 * The `-info` flag (shared/protocol.md §1.8): read an optional runtime-options `Any` on stdin and print a
 * `containerd.types.RuntimeInfo` protobuf, with the OCI runtime's `features` JSON as an `Any`.
 */
import { execFile } from "node:child_process";
import { writeSync } from "node:fs";
import { containerd } from "../../gen/bootstrap.js";
import type { Flags } from "../invocation/flags.js";
import { decodeOptionsAny, shimOptions } from "../config/options.js";
import { readStdin } from "../invocation/stdin.js";
import { packageVersion, RUNTIME_NAME } from "./version.js";

/** The type URL containerd expects for the OCI runtime features document. */
export const FEATURES_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/features/Features";

const FEATURES_TIMEOUT_MS = 10_000;

/** Runs `<binary> features` and returns its stdout (JSON). Throws with the binary's stderr on failure. */
export function runtimeFeatures(binary: string): Promise<Buffer> {
  const env = { ...process.env };
  delete env["NOTIFY_SOCKET"];
  return new Promise((resolve, reject) => {
    execFile(binary, ["features"], { encoding: "buffer", timeout: FEATURES_TIMEOUT_MS, env }, (err, stdout, stderr) => {
      if (err) {
        const detail = stderr.toString("utf8").trim() || err.message;
        reject(new Error(`Cannot run "${binary} features": ${detail}`, { cause: err }));
      } else {
        resolve(stdout);
      }
    });
  });
}

/** Builds the RuntimeInfo answer for the given stdin bytes. */
export async function runtimeInfo(stdin: Uint8Array): Promise<Uint8Array> {
  const options = decodeOptionsAny(stdin);
  const binary = shimOptions(options).binaryName || "runc";
  const features = await runtimeFeatures(binary);
  const msg = containerd.types.RuntimeInfo.create({
    name: RUNTIME_NAME,
    version: { version: packageVersion(), revision: "" },
    features: { typeUrl: FEATURES_TYPE_URL, value: features },
  });
  if (options) msg.options = { typeUrl: options.typeUrl, value: options.value };
  return containerd.types.RuntimeInfo.encode(msg).finish();
}

/** The `-info` entry point: prints the protobuf on stdout; errors propagate to `main` (exit 1). */
export async function info(_flags: Flags): Promise<void> {
  const out = await runtimeInfo(await readStdin());
  for (let off = 0; off < out.length; ) off += writeSync(1, out, off, out.length - off);
}
