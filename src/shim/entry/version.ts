/** The shim's name and version, read from package.json at run time (no gen imports: `-v` stays cheap). */
import { readFileSync } from "node:fs";
import { PACKAGED } from "../packaging/packaged.js";

/** The runtime name containerd knows this shim by. */
export const RUNTIME_NAME = "io.containerd.ts.v2";

/** The binary name, as printed by `-v`. */
export const BINARY_NAME = "containerd-shim-ts-v2";

/** The version in package.json (dist/src/shim/entry/version.js -> ../../../../package.json, or built in), or "unknown". */
export function packageVersion(): string {
  if (PACKAGED !== undefined) return PACKAGED.version; // the single executable has no package.json beside it
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../../../package.json", import.meta.url), "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}

/** The text of `-v`: binary name and version, then the runtime's ("node v20.1.0", or "bun 1.4.5"). */
export function versionText(): string {
  const bun = process.versions.bun;
  return `${BINARY_NAME} ${packageVersion()}\n${bun === undefined ? `node ${process.version}` : `bun ${bun}`}\n`;
}
