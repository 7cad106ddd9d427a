/**
 * Entry point of the single executable (scripts/package.ts bundles this file into it): the same
 * {@link main} as bin/containerd-shim-ts-v2. In a SEA process.argv is [executable, executable, ...args].
 */
import { main } from "./main.js";

void main(process.argv.slice(2));
