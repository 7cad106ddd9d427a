/**
 * Reading what containerd puts in `CreateSandboxRequest.options`: an `Any` of the CRI
 * `runtime.v1.PodSandboxConfig` (protocol.md §6.3 step 2; the exact type URL is unverified, so any URL
 * ending in `PodSandboxConfig` is accepted).
 */
import { invalidArgument } from "../errdefs.js";
import { runtime } from "../gen/crisandbox.js";

/** The decoded pod sandbox config. */
export type PodSandboxConfig = runtime.v1.PodSandboxConfig.$Properties;

/** An `Any` as protobufjs decodes it. */
export interface AnyLike {
  typeUrl?: string | null;
  value?: Uint8Array | null;
}

/**
 * Decodes `options`. No options (or an empty Any) give an empty config. A type URL that does not end
 * in `PodSandboxConfig`, or bytes that do not decode, are InvalidArgument.
 */
export function decodePodSandboxConfig(options: AnyLike | null | undefined): PodSandboxConfig {
  const url = options?.typeUrl ?? "";
  const value = options?.value ?? new Uint8Array();
  if (url === "" && value.length === 0) return {};
  if (!url.endsWith("PodSandboxConfig")) {
    throw invalidArgument(`Cannot read sandbox options of type "${url}": expected runtime.v1.PodSandboxConfig`);
  }
  try {
    return runtime.v1.PodSandboxConfig.decode(value);
  } catch (err) {
    throw invalidArgument(`Cannot decode sandbox options "${url}": ${(err as Error).message}`, { cause: err });
  }
}
