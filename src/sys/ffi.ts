/**
 * The one seam between src/sys and native code: the raw libc calls and the fd watching that the rest of
 * src/sys (libc.ts, eventfd.ts) is built on. Two implementations with the same behaviour: koffi on Node
 * (ffi-node.ts) and `bun:ffi` on Bun (bun/ffi.ts), chosen once, on first use, by `process.versions.bun`.
 * Nothing outside src/sys imports this file. Calls return libc's raw result (negative on failure, then
 * {@link Natives.errno} tells why); they never throw for a failing call.
 */
import { createRequire } from "node:module";
import { nodeNatives } from "./ffi-node.js";
import type { Natives } from "./ffi-types.js";

export type { Block, Natives, Watch } from "./ffi-types.js";

/** The JS runtime this process runs on; everything runtime-specific in src/sys branches on this. */
export const RUNTIME: "node" | "bun" = process.versions.bun !== undefined ? "bun" : "node";

/** The bindings for this runtime, loaded on first use; immutable once set. */
let loaded: Natives | undefined;

export function natives(): Natives {
  if (loaded) return loaded;
  if (RUNTIME === "bun") {
    // Only Bun may load bun/ffi.js (it requires "bun:ffi"); Bun's require() loads ES modules.
    const bun = createRequire(import.meta.url)("./bun/ffi.js") as typeof import("./bun/ffi.js");
    loaded = bun.bunNatives();
  } else {
    loaded = nodeNatives();
  }
  return loaded;
}
