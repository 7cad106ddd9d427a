/**
 * What a single executable was built with (scripts/package.ts). esbuild's `define` replaces
 * SHIM_TS_PACKAGED with an object literal in those bundles only; in the dist/ build it is never declared,
 * so {@link PACKAGED} is undefined and the shim runs as before (launcher, node_modules). No imports: the
 * `start` path reads it.
 */
export interface Packaged {
  /** The engine inside: a Node SEA (koffi embedded) or a `bun build --compile` file (bun:ffi, no koffi). */
  engine: "node" | "bun";
  /** package.json's version (there is no package.json next to the executable). */
  version: string;
  /** koffi's version: its native module reports the same one. Node only. */
  koffiVersion?: string;
  /** sha256 (hex) of the koffi.node embedded as the SEA asset {@link KOFFI_ASSET}. Node only. */
  koffiSha256?: string;
}

/** The SEA asset holding koffi's native module for linux-x64 (glibc). */
export const KOFFI_ASSET = "koffi.node";

declare const SHIM_TS_PACKAGED: Packaged | undefined;

/** The build facts inside the single executable; undefined when run through bin/ from a checkout. */
export const PACKAGED: Packaged | undefined = typeof SHIM_TS_PACKAGED === "object" ? SHIM_TS_PACKAGED : undefined;
